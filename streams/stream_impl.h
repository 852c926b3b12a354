/* Helpers shared by the stream layer's files.  Fields are encoded and
 * decoded byte by byte, never by casting a struct over the bytes, so
 * layout, alignment and host byte order cannot leak into the format. */
#ifndef TANDEM_STREAM_IMPL_H
#define TANDEM_STREAM_IMPL_H

#include <stdint.h>
#include <string.h>

#include "tandem/streams.h"

/* The sink's logger, for the writer's complaints about its arguments. */
const struct tlog *stream_sink_log(const struct stream_sink *s);

/* The writer's working space for TANDEM_PAGE_DATA_LZ4, owned by the sink
 * and made on first use (NULL if out of memory): a batch of page data,
 * then room for its compressed form, which is only written if smaller. */
#define STREAM_SINK_SCRATCH (2u * STREAM_PAGE_SIZE * STREAM_MAX_BATCH)
uint8_t *stream_sink_scratch(struct stream_sink *s);

static inline void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * (3 - i)));
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * (7 - i)));
}

static inline uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static inline uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* Bytes of zero padding after a body of len bytes. */
static inline unsigned stream_pad(uint32_t len)
{
    return (8u - (len & 7u)) & 7u;
}

/* Whether a page type carries a page of data in PAGE_DATA: NOTAB and the
 * (PV) page-table types, pinned or not. */
static inline int stream_page_type_has_data(unsigned type)
{
    return type <= 0x4 || (type >= 0x9 && type <= 0xc);
}

#endif
