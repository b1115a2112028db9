/* Fuzz target: any bytes as a model file. The loader must refuse or accept them cleanly;
 * an accepted file is then handed to the backbone and classification head loaders. */
#include <stddef.h>
#include <stdint.h>

#include "mo/classify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mo_file *f = NULL;
    if (mo_file_open_memory(&f, data, size))
        return 0;
    for (int i = 0; i < mo_file_num_tensors(f); i++) {
        mo_tensor_info info;
        mo_file_tensor_at(f, i, &info);
    }
    char digest[17];
    mo_file_digest(f, "backbone.", digest);
    mo_backbone *bb = NULL;
    if (!mo_backbone_open(&bb, f, NULL)) {
        mo_cls *cls = NULL;
        if (!mo_cls_open(&cls, f, bb, NULL))
            mo_cls_close(&cls);
        mo_backbone_close(&bb);
    }
    mo_file_close(&f);
    return 0;
}
