/* Replays fuzzer inputs without libFuzzer: each argument is a file (or a folder of files).
 * Lets the fuzz targets run as ordinary regression tests in any build (libvips does this). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = buf ? fread(buf, 1, (size_t)(n > 0 ? n : 0), f) : 0;
    fclose(f);
    if (!buf)
        return 1;
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

static int run_path(const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st))
        return fprintf(stderr, "%s: not found\n", path), 1;
    if (!S_ISDIR(st.st_mode))
        return (*count)++, run_file(path);
    DIR *d = opendir(path);
    if (!d)
        return 1;
    int err = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        err |= run_path(sub, count);
    }
    closedir(d);
    return err;
}

int main(int argc, char **argv)
{
    int err = 0, count = 0;
    for (int i = 1; i < argc; i++)
        err |= run_path(argv[i], &count);
    printf("replayed %d inputs\n", count);
    return err;
}
