/* doctor.c: vmhctl doctor's verdicts (see doctor.h). */
#include "doctor.h"

#include <stdarg.h>
#include <string.h>

void doctor_set(struct doctor_line *l, const char *check, enum doctor_verdict v, const char *fix,
                const char *fmt, ...)
{
    va_list ap;
    memset(l, 0, sizeof *l);
    snprintf(l->check, sizeof l->check, "%s", check);
    l->v = v;
    va_start(ap, fmt);
    vsnprintf(l->detail, sizeof l->detail, fmt, ap);
    va_end(ap);
    if (fix)
        snprintf(l->fix, sizeof l->fix, "%s", fix);
}

void doctor_topics(struct doctor_line *l, const char *prefix, const int counts[KAFKA_TOPIC_COUNT])
{
    char missing[300] = "", all[300] = "";
    bool equal = true;
    size_t m = 0, a = 0;
    for (int k = 0; k < KAFKA_TOPIC_COUNT; k++) {
        const char *suffix = kafka_topic_suffix((enum kafka_topic_kind)k);
        if (counts[k] <= 0)
            m += (size_t)snprintf(missing + m, m < sizeof missing ? sizeof missing - m : 0,
                                  "%s%s.%s", m ? ", " : "", prefix, suffix);
        else
            equal &= counts[k] == counts[0];
        a += (size_t)snprintf(all + a, a < sizeof all ? sizeof all - a : 0, "%s%s %d",
                              a ? ", " : "", suffix, counts[k]);
    }
    if (*missing)
        doctor_set(l, "kafka topics", DOCTOR_FAIL,
                   "create the five topics with one partition count (deploy's topic job, or "
                   "kafka-topics.sh --create --partitions N for each)",
                   "missing: %s", missing);
    else if (!equal)
        doctor_set(l, "kafka topics", DOCTOR_FAIL,
                   "give all five topics the same partition count (kafka-topics.sh --alter "
                   "--partitions N): a key must land in partition p of every topic (SPEC 1.1)",
                   "unequal partition counts: %s", all);
    else
        doctor_set(l, "kafka topics", DOCTOR_OK, NULL, "%s.* present, %d partitions each", prefix,
                   counts[0]);
}

void doctor_persistence(struct doctor_line *l, enum redis_persist aof, enum redis_persist rdb)
{
    static const char *const names[] = {"unknown", "off", "on"};
    if (aof == REDIS_PERSIST_ON || rdb == REDIS_PERSIST_ON)
        doctor_set(l, "redis persistence", DOCTOR_OK, NULL, "AOF %s, RDB %s", names[aof],
                   names[rdb]);
    else if (aof == REDIS_PERSIST_OFF && rdb == REDIS_PERSIST_OFF)
        doctor_set(l, "redis persistence", DOCTOR_FAIL,
                   "switch on AOF (appendonly yes, appendfsync everysec or always): links and "
                   "create marks must survive a Redis restart, or a crash can create a party twice",
                   "AOF off, RDB off: a restart loses links, create marks and locks");
    else
        doctor_set(l, "redis persistence", DOCTOR_UNKNOWN,
                   "a managed Redis may refuse CONFIG: check in its console that persistence (AOF "
                   "or snapshots) is on",
                   "AOF %s, RDB %s (CONFIG GET refused?)", names[aof], names[rdb]);
}

void doctor_setup(struct doctor_line *l, const struct preflight *pf)
{
    if (pf->nproblems == 0) {
        doctor_set(l, "espocrm entity", DOCTOR_OK, NULL,
                   "CBeteiligte: every sync field, OCC on, %zu phone types (default %s)",
                   pf->ntypes, pf->default_type);
        return;
    }
    char more[64] = "";
    if (pf->nproblems > 1)
        snprintf(more, sizeof more, " (and %zu more)", pf->nproblems - 1);
    doctor_set(l, "espocrm entity", DOCTOR_FAIL,
               "apply deploy/espocrm/ (entityDefs.CBeteiligte.json, OCC on) as EspoCRM's "
               "administrator; workers stay not ready until then",
               "%s%s", pf->problems[0], more);
}

void doctor_message(struct doctor_line *l, const struct preflight *pf)
{
    if (pf->can_message)
        doctor_set(l, "espocrm messages", DOCTOR_OK, NULL,
                   "the sync role may send direct messages (notifications reach users)");
    else
        doctor_set(l, "espocrm messages", DOCTOR_FAIL,
                   "set Message Permission = all on the sync user's role (deploy/espocrm/role.md)",
                   "the sync role lacks the Message permission: nobody is notified");
}

void doctor_webhooks(struct doctor_line *l, const struct hooks *h)
{
    char bad[512] = "";
    size_t n = 0;
    for (size_t i = 0; i < HOOKS_N; i++) {
        const struct hooks_one *one = &h->ev[i];
        const char *what = !one->found ? "missing" : !one->active ? "inactive" : NULL;
        if (!what)
            continue;
        n += (size_t)snprintf(
            bad + n, n < sizeof bad ? sizeof bad - n : 0, "%s%s %s%s%s", n ? "; " : "", one->event,
            what, one->elsewhere ? " (one points at " : "", one->elsewhere ? one->other_url : "");
        if (one->elsewhere && n < sizeof bad)
            n += (size_t)snprintf(bad + n, sizeof bad - n, ")");
    }
    if (*bad)
        doctor_set(l, "espocrm webhooks", DOCTOR_FAIL,
                   "vmhctl webhooks register --url <WEBHOOK_PUBLIC_URL>, then put the printed "
                   "WEBHOOK_SECRETS into the producer's secret",
                   "%s", bad);
    else
        doctor_set(l, "espocrm webhooks", DOCTOR_OK, NULL,
                   "create, update, delete registered and active at %.*s<event>",
                   (int)(strlen(h->ev[0].url) - strlen("create")), h->ev[0].url);
}

void doctor_print(FILE *out, const struct doctor_line *l)
{
    static const char *const tags[] = {"OK  ", "FAIL", "??  "};
    fprintf(out, "%s  %-18s %s\n", tags[l->v], l->check, l->detail);
    if (l->v != DOCTOR_OK && *l->fix)
        fprintf(out, "      %-18s → %s\n", "", l->fix);
}

json_t *doctor_json(const struct doctor_line *l)
{
    return json_pack("{s:s,s:o,s:s,s:o}", "check", l->check, "ok",
                     l->v == DOCTOR_UNKNOWN ? json_null() : json_boolean(l->v == DOCTOR_OK),
                     "detail", l->detail, "fix", *l->fix ? json_string(l->fix) : json_null());
}
