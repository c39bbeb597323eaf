/* ctl.c: vmhctl's context: configuration, clients on first use, output (see ctl.h). */
#include "ctl.h"

#include <stdarg.h>
#include <stdlib.h>

#include "util.h"

struct ctl *ctl_new(struct cfg *cfg, bool json, FILE *out)
{
    struct ctl *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = cfg;
    c->json = json;
    c->out = out;
    c->prefix = cfg_str(cfg, "KAFKA_TOPIC_PREFIX");
    c->brokers = cfg_str(cfg, "KAFKA_BROKERS");
    return c;
}

void ctl_free(struct ctl *c)
{
    if (!c)
        return;
    advo_free(c->advo);
    redis_client_free(c->redis);
    espo_free(c->espo);
    cfg_free(c->cfg);
    advo_rechtsformen_forget();
    free(c);
}

struct espo *ctl_espo(struct ctl *c, char *err, size_t errlen)
{
    if (!c->espo)
        c->espo = espo_new(cfg_str(c->cfg, "ESPOCRM_URL"), cfg_str(c->cfg, "ESPOCRM_API_KEY"),
                           (long)cfg_duration_ms(c->cfg, "HTTP_TIMEOUT_MS"), NULL);
    if (!c->espo)
        util_err(err, errlen, "out of memory");
    return c->espo;
}

struct redis_client *ctl_redis(struct ctl *c, char *err, size_t errlen)
{
    struct redis_url url;
    if (c->redis)
        return c->redis;
    if (redis_url_parse(cfg_str(c->cfg, "REDIS_URL"), &url, err, errlen) != 0)
        return NULL;
    if (!(c->redis = redis_client_new(&url, 2000, 5000)))
        util_err(err, errlen, "out of memory");
    return c->redis;
}

struct advo *ctl_advo(struct ctl *c, char *err, size_t errlen)
{
    if (c->advo)
        return c->advo;
    struct redis_client *r = ctl_redis(c, err, errlen);
    if (!r)
        return NULL;
    const struct cfg *g = c->cfg;
    struct advo_conf conf = advo_conf_from_cfg(g);
    c->advo = advo_new(&conf, r, NULL, err, errlen);
    return c->advo;
}

void ctl_say(struct ctl *c, const char *fmt, ...)
{
    if (c->json)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->out, fmt, ap);
    va_end(ap);
}

void ctl_emit(struct ctl *c, json_t *doc)
{
    if (!doc)
        return;
    if (c->json) {
        char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        if (s)
            fprintf(c->out, "%s\n", s);
        free(s);
    }
    json_decref(doc);
}

json_t *ctl_jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}
