/* Pieces shared by the save, restore and (later) live-migration code. */
#ifndef TANDEM_MIGRATION_INTERNAL_H
#define TANDEM_MIGRATION_INTERNAL_H

#include "tandem/migration.h"
#include "tandem/streams.h"

uint64_t migration_now_usec(void);
uint8_t *migration_pfn_to_host(const struct domain_ram_region *rr, unsigned nr, uint64_t pfn);
int migration_write_static_data(struct domain *d, struct stream_sink *s, const struct tlog *log);
/* pfn_list NULL: every RAM page.  compress: as TANDEM_PAGE_DATA_LZ4
 * where that is smaller (for a receiver that agreed to it). */
int migration_write_pages(struct domain *d, struct stream_sink *s, const uint64_t *pfn_list, uint64_t n_list,
                          bool compress, struct migration_stats *st);
int migration_write_cpu_state(struct domain *d, struct stream_sink *s, const struct tlog *log);
int migration_write_device_state(struct domain *d, struct stream_sink *s, const struct tlog *log);

#endif
