/* hooks.c: which EspoCRM webhooks are vmh-sync's (see hooks.h). */
#include "hooks.h"

#include <stdio.h>
#include <string.h>

#include "msg.h"
#include "webhook.h"

#define HOOKS_ENTITY "CBeteiligte"

static const enum msg_event hook_events[HOOKS_N] = {MSG_EVENT_CREATE, MSG_EVENT_UPDATE,
                                                    MSG_EVENT_DELETE};

int hooks_init(struct hooks *h, const char *base)
{
    memset(h, 0, sizeof *h);
    size_t blen = base ? strlen(base) : 0;
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    if (blen == 0)
        return -1;
    for (size_t i = 0; i < HOOKS_N; i++) {
        const char *ev = msg_event_name(hook_events[i]);
        snprintf(h->ev[i].event, sizeof h->ev[i].event, HOOKS_ENTITY ".%s", ev);
        int n = snprintf(h->ev[i].url, sizeof h->ev[i].url, "%.*s" WEBHOOK_PATH_PREFIX "%s",
                         (int)blen, base, ev);
        if (n < 0 || (size_t)n >= sizeof h->ev[i].url)
            return -1;
    }
    return 0;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Copies id and secretKey of w into one; -1 when either is missing or too long. */
static int take(struct hooks_one *one, const json_t *w)
{
    const char *id = str(w, "id"), *secret = str(w, "secretKey");
    if (!*id || !*secret || strlen(id) >= sizeof one->id || strlen(secret) >= sizeof one->secret)
        return -1;
    snprintf(one->id, sizeof one->id, "%s", id);
    snprintf(one->secret, sizeof one->secret, "%s", secret);
    one->found = true;
    one->active = !json_is_false(json_object_get(w, "isActive"));
    return 0;
}

void hooks_match(struct hooks *h, const json_t *list)
{
    size_t k;
    json_t *w;
    for (size_t i = 0; i < HOOKS_N; i++) {
        struct hooks_one *one = &h->ev[i];
        json_array_foreach(list, k, w)
        {
            if (strcmp(str(w, "event"), one->event) != 0 ||
                json_is_true(json_object_get(w, "deleted")))
                continue;
            if (strcmp(str(w, "url"), one->url) != 0) {
                if (one->elsewhere++ == 0)
                    snprintf(one->other_url, sizeof one->other_url, "%s", str(w, "url"));
                continue;
            }
            bool active = !json_is_false(json_object_get(w, "isActive"));
            if (!one->found || (active && !one->active))
                (void)take(one, w);
        }
    }
}

int hooks_take(struct hooks *h, size_t i, const json_t *answer)
{
    if (i >= HOOKS_N)
        return -1;
    return take(&h->ev[i], answer);
}

int hooks_secrets(const struct hooks *h, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0)
        return -1;
    buf[0] = '\0';
    for (size_t i = 0; i < HOOKS_N; i++) {
        const struct hooks_one *one = &h->ev[i];
        if (!one->found)
            return -1;
        int n = snprintf(buf + used, len - used, "%s%s:%s", i ? "," : "", one->id, one->secret);
        if (n < 0 || (size_t)n >= len - used) {
            buf[0] = '\0';
            return -1;
        }
        used += (size_t)n;
    }
    return 0;
}
