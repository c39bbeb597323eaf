/* msg.c: Kafka message values of SPEC §2 (see msg.h). */
#include "msg.h"

#include "synctime.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *const event_names[] = {"create", "update", "delete", "sync_check"};
static const char *const source_names[] = {"webhook", "cron", "cli"};

const char *msg_event_name(enum msg_event e)
{
    return (unsigned)e < 4 ? event_names[e] : "sync_check";
}

const char *msg_source_name(enum msg_source s)
{
    return (unsigned)s < 3 ? source_names[s] : "cli";
}

int msg_event_parse(const char *s, enum msg_event *out)
{
    for (int i = 0; s && i < 4; i++) {
        if (strcmp(s, event_names[i]) == 0) {
            *out = (enum msg_event)i;
            return 0;
        }
    }
    return -1;
}

char *msg_encode(const char *entity_id, enum msg_event event, enum msg_source source,
                 const char *reason, long long emitted_at_ms)
{
    char ts[40];
    if (!entity_id || !*entity_id || strlen(entity_id) > MSG_ID_MAX)
        return NULL;
    st_format_utc_ms(emitted_at_ms, ts, sizeof ts);
    json_t *o =
        json_pack("{s:i,s:s,s:s,s:s,s:s}", "v", MSG_VERSION, "entityId", entity_id, "event",
                  msg_event_name(event), "source", msg_source_name(source), "emittedAt", ts);
    if (!o)
        return NULL;
    if (reason && *reason)
        json_object_set_new(o, "reason", json_string(reason));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

static void copy_str(char *dst, size_t len, json_t *v)
{
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    snprintf(dst, len, "%s", s);
}

int msg_decode(const char *value, size_t len, struct msg *out, char *err, size_t errlen)
{
    json_error_t je;
    memset(out, 0, sizeof *out);
    if (!value || len == 0) {
        snprintf(err, errlen, "empty message value");
        return -1;
    }
    json_t *o = json_loadb(value, len, 0, &je);
    if (!o) {
        snprintf(err, errlen, "not JSON: %s", je.text);
        return -1;
    }
    int rc = -1;
    json_t *v = json_object_get(o, "v");
    json_t *id = json_object_get(o, "entityId");
    if (!json_is_object(o)) {
        snprintf(err, errlen, "not a JSON object");
    } else if (!json_is_integer(v) || json_integer_value(v) != MSG_VERSION) {
        snprintf(err, errlen, "unknown message version (v must be %d)", MSG_VERSION);
    } else if (!json_is_string(id) || json_string_length(id) == 0 ||
               json_string_length(id) > MSG_ID_MAX) {
        snprintf(err, errlen, "entityId missing, not a string, or longer than %d", MSG_ID_MAX);
    } else {
        copy_str(out->entity_id, sizeof out->entity_id, id);
        const char *ev = json_string_value(json_object_get(o, "event"));
        if (msg_event_parse(ev, &out->event) != 0)
            out->event = MSG_EVENT_SYNC_CHECK;
        const char *src = json_string_value(json_object_get(o, "source"));
        out->source = MSG_SOURCE_CLI;
        for (int i = 0; src && i < 3; i++)
            if (strcmp(src, source_names[i]) == 0)
                out->source = (enum msg_source)i;
        copy_str(out->reason, sizeof out->reason, json_object_get(o, "reason"));
        copy_str(out->emitted_at, sizeof out->emitted_at, json_object_get(o, "emittedAt"));
        rc = 0;
    }
    json_decref(o);
    return rc;
}
