/* decide.c: the decisions of a party's next run, without calls (see decide.h). The inputs are
 * assembled as the run's update() and create() in sync.c assemble them. */
#include "decide.h"

#include "compare.h"
#include "syncfields.h"
#include "synctime.h"
#include "util.h"

#include <string.h>

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : NULL;
}

/* What compare.h needs to know of both sides (sync.c update()). */
static void compare_input(const struct decide_in *in, struct cmp_input *c)
{
    const json_t *e = in->entity;
    memset(c, 0, sizeof *c);
    c->modified_by = jstr(e, "modifiedById");
    c->sync_user_id = in->sync_user_id;
    c->entity_rowid = jstr(e, SF_ADVOWARE_ROW_ID);
    c->advo_rowid = jstr(in->advo, "rowId");
    const char *st = jstr(e, SF_SYNC_STATUS);
    c->dirty = syncfields_status_is(st, SF_STATUS_DIRTY) ||
               syncfields_status_is(st, SF_STATUS_PENDING_SYNC);
    if (!c->dirty && st && !syncfields_status_is(st, SF_STATUS_CLEAN))
        c->dirty = in->espo_pending;
    const char *ls = jstr(e, SF_ADVOWARE_LAST_SYNC), *ma = jstr(e, "modifiedAt");
    const char *ga = jstr(in->advo, "geaendertAm");
    c->has_last_sync = ls && st_parse_espo(ls, &c->last_sync) == 0;
    if (ma)
        st_parse_espo(ma, &c->modified_at);
    c->has_geaendert = ga && st_parse_advo(ga, &c->geaendert_am) == 0;
}

void decide_based_on(const json_t *entity, char out[33])
{
    const char *t = jstr(entity, SF_ADVOWARE_SYNC_BASELINE);
    util_md5_hex(t ? t : "", t ? strlen(t) : 0, out, 32);
}

json_t *decide_baseline(const json_t *entity, const json_t *link, const json_t *ahead,
                        const json_t *advo, bool *from_ahead)
{
    *from_ahead = false;
    json_t *base = merge_baseline_parse(jstr(entity, SF_ADVOWARE_SYNC_BASELINE));
    json_int_t betnr = json_integer_value(json_object_get(entity, SF_BETNR));
    json_t *posted = json_object_get(link, "posted");
    if (!base && json_is_object(posted) &&
        (betnr <= 0 || json_integer_value(json_object_get(link, "betnr")) == betnr))
        base = json_pack("{s:O}", "fields", posted);
    json_t *resolved = base && ahead ? merge_pending_resolve(ahead, advo) : NULL;
    if (resolved) {
        json_decref(base);
        *from_ahead = true;
        return resolved;
    }
    return base;
}

int decide_make(const struct decide_in *in, struct decide *out)
{
    memset(out, 0, sizeof *out);
    struct ksync_in kin = {.entity = in->entity,
                           .phone_types = in->phone_types,
                           .nphone_types = in->nphone_types,
                           .default_type = in->default_type,
                           .dir = KOMM_BOTH};
    if (!in->advo) { /* a create: the new record has no entries yet */
        out->create = true;
        out->espo_changed = true;
        kin.create = true;
        kin.espo_changed = true;
        out->ks = ksync_new(&kin);
        return out->ks ? 0 : -1;
    }
    struct cmp_input c;
    compare_input(in, &c);
    out->baseline = in->baseline
                        ? json_incref((json_t *)in->baseline)
                        : merge_baseline_parse(jstr(in->entity, SF_ADVOWARE_SYNC_BASELINE));
    out->fb =
        (struct merge_fallback){.espo_changed = c.dirty, .advo_changed = cmp_advo_changed(&c)};
    out->espo_changed = cmp_espo_changed(&c);
    if (merge_fields(in->entity, in->advo, json_object_get(out->baseline, "fields"), &out->fb,
                     &out->m) != 0) {
        json_decref(out->baseline);
        memset(out, 0, sizeof *out);
        return -1;
    }
    kin.advo_list = json_object_get(in->advo, "kommunikation");
    kin.base_komm = json_object_get(out->baseline, "komm");
    kin.espo_changed = out->espo_changed;
    kin.dir = out->m.mcase == MCASE_CONFLICT ? KOMM_TO_ADVOWARE : KOMM_BOTH;
    if (!(out->ks = ksync_new(&kin))) {
        decide_free(out);
        return -1;
    }
    return 0;
}

void decide_free(struct decide *d)
{
    if (!d)
        return;
    ksync_free(d->ks);
    if (!d->create)
        merge_result_free(&d->m);
    json_decref(d->baseline);
    memset(d, 0, sizeof *d);
}
