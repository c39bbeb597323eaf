/* compare.h: whether each side changed as a whole (SPEC §5.2): the fallback of the three-way
 * merge for a party without a baseline (merge.h), and the Kommunikation planner's inputs. Pure.
 *
 * Times are Unix seconds (UTC); the caller converts EspoCRM's UTC datetimes and Advoware's
 * zone-less local times (synctime.h) before asking. */
#ifndef VMH_COMPARE_H
#define VMH_COMPARE_H

#include <stdbool.h>

/* A sync's own final write lands this long after the advowareLastSync it writes, at most. */
#define OWN_WRITE_TOLERANCE_S 10

struct cmp_input {
    /* EspoCRM */
    bool has_last_sync;
    long long last_sync;      /* advowareLastSync */
    long long modified_at;    /* modifiedAt */
    const char *modified_by;  /* modifiedById (NULL = unknown) */
    const char *sync_user_id; /* the sync user (GET App/user at start) */
    const char *entity_rowid; /* advowareRowId (NULL or "" = none) */
    bool dirty;               /* syncStatus dirty or pending_sync: EspoCRM's formula saw a
                                 person change a synced field (modifiedAt has whole seconds
                                 only, so an edit in the sync's own second shows only here) */
    /* Advoware */
    const char *advo_rowid; /* rowId of the GET (NULL or "" = none) */
    bool has_geaendert;
    long long geaendert_am; /* geaendertAm */
};

/* dirty, or lastSync is null, or modifiedAt > lastSync and it is not the sync's own write (by
 * the sync user, within OWN_WRITE_TOLERANCE_S of lastSync). */
bool cmp_espo_changed(const struct cmp_input *in);
/* rowIds differ when both exist; otherwise geaendertAm > lastSync (no lastSync: changed when
 * Advoware has a time at all). */
bool cmp_advo_changed(const struct cmp_input *in);
#endif
