/* The framing of the device-state blob: a list of device models, each
 * {u32 id, u32 version, u32 length} and `length` bytes of state.  Pure
 * code, so the fuzzer can drive it. */
#include "config.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "devices.h"

static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

void devstate_put_header(uint8_t *out, uint32_t id, uint32_t version, uint32_t length)
{
    put32(out, id);
    put32(out + 4, version);
    put32(out + 8, length);
}

uint32_t devstate_model_of(const struct virtio_dev *v)
{
    return v->device_id == VIRTIO_ID_NET ? DEVSTATE_VIRTIO_NET : DEVSTATE_VIRTIO_BLK;
}

int devstate_parse(const uint8_t *blob, size_t len, struct devstate_model *models, unsigned max, unsigned *n,
                   char *err, size_t errlen)
{
    size_t off = 0;
    *n = 0;
    while (off < len) {
        if (len - off < DEVSTATE_HDR) {
            snprintf(err, errlen, "truncated model header at offset %zu", off);
            return -EINVAL;
        }
        struct devstate_model m = { get32(blob + off), get32(blob + off + 4), get32(blob + off + 8), NULL };
        off += DEVSTATE_HDR;
        if (m.length > len - off) {
            snprintf(err, errlen, "model %u at offset %zu claims %u bytes, %zu left", m.id, off - DEVSTATE_HDR,
                     m.length, len - off);
            return -EINVAL;
        }
        if (*n == max) {
            snprintf(err, errlen, "more than %u device models", max);
            return -EINVAL;
        }
        m.body = blob + off;
        models[(*n)++] = m;
        off += m.length;
    }
    return 0;
}
