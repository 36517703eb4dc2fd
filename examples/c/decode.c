/* Decodes a .nnc file through the C ABI: lists every tensor, decodes one by name (borrowed and
 * copied into a buffer), and decodes the whole model to ONNX bytes in memory.
 *
 *   cc examples/c/decode.c -Icapi/include target/release/libnnc_capi.a -lpthread -ldl -lm
 *   ./a.out [--base BASE]... MODEL.nnc [NAME [OUT.onnx]]
 *
 * With --base (an .onnx or .nnc; repeated for a chain, root first), MODEL.nnc may be an update
 * coded against that base (spec §14).
 *
 * Prints one line per tensor ("name dtype [dims] bytes"), then "model: N bytes of ONNX".
 * Exits 1 with the library's message on any error. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

static int fail(const char *what, int status) {
    fprintf(stderr, "%s: %s: %s\n", what, nnc_status_name(status), nnc_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *base_paths[16];
    size_t bases = 0;
    while (argc > 2 && strcmp(argv[1], "--base") == 0 && bases < 16) {
        base_paths[bases++] = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s [--base BASE]... MODEL.nnc [NAME [OUT.onnx]]\n", argv[0]);
        return 2;
    }
    nnc_limits limits;
    nnc_limits_default(&limits);
    int s;
    nnc_base *base = NULL;
    if (bases > 0) {
        s = nnc_base_open(base_paths, bases, &limits, &base);
        if (s != NNC_OK) return fail("base", s);
    }
    nnc_archive *archive = NULL;
    s = nnc_open_path_with_base(argv[1], &limits, base, &archive);
    if (s != NNC_OK) return fail("open", s);

    size_t count = nnc_tensor_count(archive);
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        nnc_tensor *t = NULL;
        s = nnc_tensor_at(archive, i, &t);
        if (s != NNC_OK) return fail("tensor", s);
        const uint64_t *dims = NULL;
        size_t rank = nnc_tensor_dims(t, &dims);
        size_t len = 0;
        nnc_tensor_data(t, &len);
        printf("%s %d [", nnc_tensor_name(t), nnc_tensor_dtype(t));
        for (size_t d = 0; d < rank; d++) printf(d ? ",%" PRIu64 : "%" PRIu64, dims[d]);
        printf("] %zu\n", len);
        total += len;
        nnc_tensor_free(t);
    }
    printf("tensors: %zu, %" PRIu64 " bytes\n", count, total);

    if (argc > 2) {
        nnc_tensor *t = NULL;
        s = nnc_tensor_by_name(archive, argv[2], &t);
        if (s != NNC_OK) return fail("by name", s);
        size_t len = 0;
        const uint8_t *borrowed = nnc_tensor_data(t, &len);
        size_t written = 0;
        if (len > 0 && nnc_tensor_copy(t, NULL, 0, &written) != NNC_ERR_BUFFER_TOO_SMALL) {
            fprintf(stderr, "a too small buffer was accepted\n");
            return 1;
        }
        uint8_t *copy = malloc(len ? len : 1);
        s = nnc_tensor_copy(t, copy, len, &written);
        if (s != NNC_OK) return fail("copy", s);
        if (written != len || (len && memcmp(copy, borrowed, len) != 0)) {
            fprintf(stderr, "copied bytes differ from the borrowed ones\n");
            return 1;
        }
        uint32_t sum = 0;
        for (size_t i = 0; i < len; i++) sum = sum * 31u + copy[i];
        printf("tensor %s: %zu bytes, checksum %08" PRIx32 "\n", nnc_tensor_name(t), len, sum);
        free(copy);
        nnc_tensor_free(t);
        nnc_tensor *none = NULL;
        s = nnc_tensor_by_name(archive, "no such tensor", &none);
        if (s != NNC_ERR_NOT_FOUND) {
            fprintf(stderr, "missing tensor: expected NNC_ERR_NOT_FOUND, got %d\n", s);
            return 1;
        }
    }

    uint8_t *onnx = NULL;
    size_t onnx_len = 0;
    s = nnc_decode_model(archive, &onnx, &onnx_len);
    if (s != NNC_OK) return fail("decode", s);
    printf("model: %zu bytes of ONNX\n", onnx_len);
    nnc_bytes_free(onnx, onnx_len);
    nnc_close(archive);

    /* To a file (external tensors beside it), in memory bounded by the largest tensor. */
    if (argc > 3) {
        s = nnc_decode_file_with_base(argv[1], argv[3], 0, NULL, base);
        if (s != NNC_OK) return fail("decode_file", s);
        printf("file: %s\n", argv[3]);
    }

    /* Garbage in memory is an error with a message, never a crash. */
    static const uint8_t junk[] = "not an nnc file at all";
    s = nnc_open_memory(junk, sizeof junk, NULL, &archive);
    if (s != NNC_ERR_FORMAT) {
        fprintf(stderr, "junk: expected NNC_ERR_FORMAT, got %d\n", s);
        return 1;
    }
    printf("junk: %s\n", nnc_last_error());
    nnc_base_free(base);
    return 0;
}
