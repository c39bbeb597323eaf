/* cmd_webhooks.c: vmhctl webhooks register [--url URL] (SPEC §11, §13): registers the three
 * webhooks of vmh-producer as the API user, idempotently — the ones EspoCRM already has at the
 * URL are kept (an inactive one is switched on), only missing ones are created — and prints the
 * WEBHOOK_SECRETS value their secret keys make. That value is the only secret vmhctl prints. */
#include "cmd.h"

#include <string.h>

#include "hooks.h"
#include "wauth.h"

/* Lists EspoCRM's webhooks, page by page (maxSize above 200 is a 403, recorded 05). */
static int list_all(struct espo *e, json_t *all, char *err, size_t errlen, long *status)
{
    for (int offset = 0, page = 0; page < 50; page++) {
        json_t *out = NULL;
        if (espo_webhook_list(e, 200, offset, status, &out, err, errlen) != 0 || *status != 200) {
            json_decref(out);
            return -1;
        }
        json_t *list = json_object_get(out, "list");
        json_array_extend(all, list);
        size_t n = json_array_size(list);
        json_int_t total = json_integer_value(json_object_get(out, "total"));
        json_decref(out);
        offset += (int)n;
        if (n < 200 || offset >= total)
            break;
    }
    return 0;
}

static int fail(const char *what, long status, const char *err)
{
    fprintf(stderr, "vmhctl webhooks register: %s (status %ld%s%s)%s\n", what, status,
            *err ? ": " : "", err,
            status == 403 ? "; the sync role needs access to Webhooks (deploy/espocrm/role.md)"
                          : "");
    return CTL_PROBLEM;
}

int cmd_webhooks(struct ctl *c, int argc, char **argv)
{
    const char *url = cfg_str(c->cfg, "WEBHOOK_PUBLIC_URL");
    if (argc < 1 || strcmp(argv[0], "register") != 0) {
        fprintf(stderr, "vmhctl webhooks: register [--url URL]\n");
        return CTL_USAGE;
    }
    if (argc == 3 && strcmp(argv[1], "--url") == 0)
        url = argv[2];
    else if (argc != 1) {
        fprintf(stderr, "vmhctl webhooks register: [--url URL] is the only option\n");
        return CTL_USAGE;
    }
    struct hooks h;
    if (!url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) ||
        hooks_init(&h, url) != 0) {
        fprintf(stderr, "vmhctl webhooks register: --url (or WEBHOOK_PUBLIC_URL) must be "
                        "vmh-producer's http(s) URL as EspoCRM reaches it\n");
        return CTL_USAGE;
    }
    char err[256], secrets[1024];
    long status = 0;
    struct espo *e = ctl_espo(c, err, sizeof err);
    json_t *all = json_array();
    if (!e || list_all(e, all, err, sizeof err, &status) != 0) {
        json_decref(all);
        return fail("EspoCRM did not list its webhooks", status, err);
    }
    hooks_match(&h, all);
    json_decref(all);
    json_t *done = json_array();
    for (size_t i = 0; i < HOOKS_N; i++) {
        struct hooks_one *one = &h.ev[i];
        const char *what = "kept";
        json_t *out = NULL;
        if (!one->found) {
            what = "registered";
            if (espo_webhook_register(e, one->event, one->url, &status, &out, err, sizeof err) !=
                    0 ||
                (status != 200 && status != 201) || hooks_take(&h, i, out) != 0) {
                json_decref(out);
                json_decref(done);
                return fail("EspoCRM did not register a webhook", status, err);
            }
        } else if (!one->active) {
            what = "activated";
            json_t *on = json_pack("{s:b}", "isActive", 1);
            int rc = espo_webhook_update(e, one->id, on, &status, &out, err, sizeof err);
            json_decref(on);
            if (rc != 0 || status != 200 || hooks_take(&h, i, out) != 0) {
                json_decref(out);
                json_decref(done);
                return fail("EspoCRM did not activate a webhook", status, err);
            }
        }
        json_decref(out);
        ctl_say(c, "%-20s %-10s %s (id %s)\n", one->event, what, one->url, one->id);
        if (one->elsewhere)
            ctl_say(c,
                    "%-20s note: %zu other webhook(s) of this event point at %s%s; remove "
                    "them in EspoCRM if that producer is gone\n",
                    "", one->elsewhere, one->other_url, one->elsewhere > 1 ? " and more" : "");
        json_array_append_new(done, json_pack("{s:s,s:s,s:s,s:s,s:I}", "event", one->event, "url",
                                              one->url, "id", one->id, "action", what, "elsewhere",
                                              (json_int_t)one->elsewhere));
    }
    struct wauth *check = NULL;
    if (hooks_secrets(&h, secrets, sizeof secrets) != 0 ||
        !(check = wauth_parse(secrets, err, sizeof err))) {
        json_decref(done);
        fprintf(stderr, "vmhctl webhooks register: EspoCRM's secret keys do not form a "
                        "WEBHOOK_SECRETS value\n");
        return CTL_PROBLEM;
    }
    wauth_free(check);
    ctl_say(c,
            "\nWEBHOOK_SECRETS=%s\n(put it into vmh-producer's secret; it is printed because "
            "you asked: keep it out of tickets and chats)\n",
            secrets);
    ctl_emit(c, json_pack("{s:o,s:s}", "webhooks", done, "WEBHOOK_SECRETS", secrets));
    return CTL_OK;
}
