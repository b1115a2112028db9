/* Image id lists of mo-eval seg and the kind of a state file, read as every eval input:
 * regular files only, size checked (text_file_bytes), counts checked (max_images). */
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "mo_internal/fileio.h"
#include "parsers_internal.h"

void mo_eval_free_ids(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

int mo_eval_parse_ids(char *data, size_t size, const char *name, char ***ids, size_t *n)
{
    validate_input_or_ret(data != NULL && name != NULL && ids != NULL && n != NULL &&
                              data[size] == 0,
                          MO_EINVAL);
    *ids = NULL;
    *n = 0;
    /* Lines with a word, counted before the array is allocated. */
    size_t words = 0;
    for (size_t i = 0, word = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            words += word;
            word = 0;
        } else if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r') {
            word = 1;
        }
    }
    int ret = mo_eval_check_limit(name, words, MO_EVAL_LIMIT_IMAGES);
    if (ret)
        return ret;
    char **v = calloc(words + 1, sizeof(char *));
    if (!v)
        return mo_fail(MO_ENOMEM, "%s: out of memory", name);
    size_t k = 0;
    for (char *p = data; p < data + size && !ret;) {
        char *e = memchr(p, '\n', (size_t)(data + size - p));
        char *next = e ? e + 1 : data + size;
        if (e)
            *e = 0;
        p += strspn(p, " \t\r");
        size_t len = strcspn(p, " \t\r");
        if (len && k < words) {
            if (!(v[k] = malloc(len + 1)))
                ret = mo_fail(MO_ENOMEM, "%s: out of memory", name);
            else {
                memcpy(v[k], p, len);
                v[k++][len] = 0;
            }
        }
        p = next;
    }
    if (ret) {
        mo_eval_free_ids(v, k);
        return ret;
    }
    *ids = v;
    *n = k;
    return MO_OK;
}

int mo_eval_read_ids(const char *path, char ***ids, size_t *n)
{
    validate_input_or_ret(path != NULL && ids != NULL && n != NULL, MO_EINVAL);
    *ids = NULL;
    *n = 0;
    char *data;
    size_t size;
    int ret = mo_eval_read_file(path, 0, &data, &size);
    if (!ret)
        ret = mo_eval_parse_ids(data, size, path, ids, n);
    free(data);
    return ret;
}

int mo_eval_state_kind(const char *path, int *kind)
{
    validate_input_or_ret(path != NULL && kind != NULL, MO_EINVAL);
    *kind = -1;
    mo_limits lim;
    mo_limits_get(&lim);
    FILE *f;
    int ret = mo_fopen_regular(&f, path, lim.text_file_bytes, "text_file_bytes");
    if (ret)
        return ret;
    unsigned char h[12];
    size_t got = fread(h, 1, sizeof(h), f);
    fclose(f);
    if (got != sizeof(h) || memcmp(h, "MOEVAL", 6))
        return mo_fail(MO_EFORMAT, "%s: not an mo-eval state file", path);
    *kind = (int)(h[8] | h[9] << 8 | h[10] << 16 | (uint32_t)h[11] << 24);
    return MO_OK;
}
