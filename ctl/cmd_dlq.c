/* cmd_dlq.c: vmhctl dlq list | dlq replay (SPEC §2, §11). list shows every dead letter with its
 * origin and error; replay sends each letter not handled yet back to its original topic with its
 * key, unchanged, through vmh-producer's own producer (so it lands in the partition the producer
 * would use), then records in the replay group that they were handled. A letter the current code
 * still cannot read (msg_decode) is not sent back — it would only return to the DLQ — and is
 * reported. Replay is at-least-once: an interrupted replay sends the same letters again next
 * time, which is harmless because handling is level-triggered (SPEC §1.1). */
#include "cmd.h"

#include <stdlib.h>
#include <string.h>

#include "dlqread.h"
#include "ksend.h"
#include "msg.h"
#include "view.h"

#define READ_TIMEOUT_MS 30000
#define SEND_TIMEOUT_MS 30000

/* Why the current code cannot read letter l ("" when it can; then *m is the message). */
static void invalid(const struct dlq_letter *l, struct msg *m, char *why, size_t len)
{
    why[0] = '\0';
    if (msg_decode(l->value, l->len, m, why, len) != 0 && !*why)
        snprintf(why, len, "unreadable");
}

/* The topic a letter goes back to: its header when it is one of the four (SPEC §2), else
 * sync_check (events are only hints). */
static enum kafka_topic_kind target(const struct ctl *c, const struct dlq_letter *l)
{
    for (int k = 0; k < KAFKA_TOPIC_DLQ; k++) {
        char name[256];
        if (kafka_topic_name(c->prefix, (enum kafka_topic_kind)k, name, sizeof name) == 0 &&
            strcmp(name, l->topic) == 0)
            return (enum kafka_topic_kind)k;
    }
    return KAFKA_TOPIC_SYNC_CHECK;
}

static json_t *printable(const char *bytes, size_t len)
{
    char *s = dlqread_printable(bytes, len);
    json_t *j = s ? json_string(s) : json_null();
    free(s);
    return j ? j : json_null();
}

static struct dlqread *open_read(struct ctl *c, const char *cmd)
{
    char topic[256], group[300], err[512];
    kafka_topic_name(c->prefix, KAFKA_TOPIC_DLQ, topic, sizeof topic);
    snprintf(group, sizeof group, "%s-dlq-replay", cfg_str(c->cfg, "KAFKA_GROUP_ID"));
    struct dlqread *d = dlqread_open(c->brokers, topic, group, err, sizeof err);
    if (d && dlqread_fetch(d, READ_TIMEOUT_MS, err, sizeof err) == 0)
        return d;
    fprintf(stderr, "vmhctl dlq %s: %s\n", cmd, err);
    dlqread_close(d);
    return NULL;
}

static int dlq_list(struct ctl *c)
{
    struct dlqread *d = open_read(c, "list");
    if (!d)
        return CTL_PROBLEM;
    json_t *rows = json_array();
    size_t open = 0;
    for (size_t i = 0; i < dlqread_count(d); i++) {
        const struct dlq_letter *l = dlqread_get(d, i);
        char why[256], at[48], from[320];
        struct msg m;
        invalid(l, &m, why, sizeof why);
        const char *state =
            l->handled ? (*why ? "skipped (invalid)" : "replayed") : (*why ? "invalid" : "pending");
        open += !l->handled;
        snprintf(at, sizeof at, "%d@%lld", l->partition, l->offset);
        snprintf(from, sizeof from, "%s[%s]@%s", *l->topic ? l->topic : "?",
                 *l->from_partition ? l->from_partition : "?",
                 *l->from_offset ? l->from_offset : "?");
        json_array_append_new(
            rows, json_pack("{s:i,s:I,s:s,s:o,s:s,s:s,s:s,s:s,s:o,s:s,s:o}", "partition",
                            l->partition, "offset", (json_int_t)l->offset, "at", at, "key",
                            printable(l->key, l->keylen), "topic", l->topic, "from", from, "error",
                            l->error, "state", state, "value", printable(l->value, l->len), "why",
                            why, "replayTo",
                            *why ? json_null() : json_string(kafka_topic_suffix(target(c, l)))));
    }
    ctl_say(c, "%zu dead letter(s), %zu not handled by a replay yet\n", dlqread_count(d), open);
    if (!c->json && json_array_size(rows)) {
        static const char *const keys[] = {"at", "key", "from", "error", "state", "value"};
        static const char *const heads[] = {"dlq", "key", "from", "error", "state", "value"};
        view_table(c->out, rows, keys, heads, 6);
    }
    ctl_emit(c, json_pack("{s:o,s:I}", "letters", rows, "open", (json_int_t)open));
    dlqread_close(d);
    return open ? CTL_PROBLEM : CTL_OK;
}

static int dlq_replay(struct ctl *c)
{
    char err[512];
    struct dlqread *d = open_read(c, "replay");
    if (!d)
        return CTL_PROBLEM;
    struct ksend *s = ksend_new(c->brokers, c->prefix, err, sizeof err);
    if (!s) {
        fprintf(stderr, "vmhctl dlq replay: %s\n", err);
        dlqread_close(d);
        return CTL_PROBLEM;
    }
    json_t *sent = json_array(), *skipped = json_array();
    size_t queued = 0;
    bool refused = false;
    for (size_t i = 0; i < dlqread_count(d); i++) {
        const struct dlq_letter *l = dlqread_get(d, i);
        char why[256], at[48];
        if (l->handled)
            continue;
        snprintf(at, sizeof at, "%d@%lld", l->partition, l->offset);
        struct msg m;
        invalid(l, &m, why, sizeof why);
        if (*why) {
            json_array_append_new(skipped, json_pack("{s:s,s:o,s:s}", "at", at, "key",
                                                     printable(l->key, l->keylen), "why", why));
            continue;
        }
        enum kafka_topic_kind k = target(c, l);
        /* its key as stored (the entity id); a letter without one is keyed by its entityId */
        const char *key = l->keylen && strlen(l->key) == l->keylen ? l->key : m.entity_id;
        if (ksend_queue(s, k, key, l->value, l->len, err, sizeof err) < 0) {
            refused = true;
            break;
        }
        queued++;
        json_array_append_new(sent, json_pack("{s:s,s:o,s:s}", "at", at, "key",
                                              printable(key, strlen(key)), "topic",
                                              kafka_topic_suffix(k)));
    }
    size_t bad = refused ? queued + 1 : ksend_wait(s, SEND_TIMEOUT_MS);
    ksend_close(s, 1000, NULL, NULL);
    int rc = CTL_OK;
    if (bad) {
        ctl_say(c,
                "replay NOT complete: %zu letter(s) not acknowledged by Kafka%s%s; nothing "
                "recorded, run it again (letters sent twice are harmless)\n",
                bad, refused ? ": " : "", refused ? err : "");
        rc = CTL_PROBLEM;
    } else if (dlqread_commit(d, err, sizeof err) != 0) {
        ctl_say(c, "replayed, but not recorded (%s): the next replay sends them again (harmless)\n",
                err);
        rc = CTL_PROBLEM;
    } else {
        ctl_say(c,
                "%zu letter(s) replayed to their topics, %zu skipped (still unreadable: nothing "
                "can process them; find who sent them)\n",
                json_array_size(sent), json_array_size(skipped));
    }
    size_t i;
    json_t *x;
    json_array_foreach(skipped, i, x)
    {
        ctl_say(c, "  skipped %s: %s\n", json_string_value(json_object_get(x, "at")),
                json_string_value(json_object_get(x, "why")));
    }
    ctl_emit(c, json_pack("{s:o,s:o,s:b}", "replayed", sent, "skipped", skipped, "recorded",
                          rc == CTL_OK));
    dlqread_close(d);
    return rc;
}

int cmd_dlq(struct ctl *c, int argc, char **argv)
{
    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return dlq_list(c);
    if (argc == 1 && strcmp(argv[0], "replay") == 0)
        return dlq_replay(c);
    fprintf(stderr, "vmhctl dlq: list or replay\n");
    return CTL_USAGE;
}
