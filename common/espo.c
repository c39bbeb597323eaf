/* espo.c: the EspoCRM REST client (see espo.h). */
#include "espo.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpc.h"

#define ESPO_SYSTEM "espocrm"

struct espo {
    struct httpc *http;
    char *base;       /* base URL + "/api/v1" */
    char *key_header; /* "X-Api-Key: …" (never logged) */
    struct apistat st;
};

unsigned long espo_calls(const struct espo *c)
{
    return c ? c->st.made : 0;
}

struct espo *espo_new(const char *base_url, const char *api_key, long timeout_ms,
                      const struct apistat *st)
{
    struct espo *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    struct httpc_opts opts = {.timeout_ms = timeout_ms};
    size_t blen = strlen(base_url);
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    if (asprintf(&c->base, "%.*s/api/v1", (int)blen, base_url) < 0) {
        c->base = NULL;
        goto err;
    }
    if (asprintf(&c->key_header, "X-Api-Key: %s", api_key) < 0) {
        c->key_header = NULL;
        goto err;
    }
    if (!(c->http = httpc_new(&opts)))
        goto err;
    if (st)
        c->st = *st;
    return c;
err:
    espo_free(c);
    return NULL;
}

void espo_free(struct espo *c)
{
    if (!c)
        return;
    httpc_free(c->http);
    free(c->base);
    if (c->key_header)
        memset(c->key_header, 0, strlen(c->key_header));
    free(c->key_header);
    free(c);
}

/* One call: path below /api/v1 (already escaped), optional query, optional body. */
static int call(struct espo *c, const char *method, const char *path, const char *query,
                const json_t *body, const char *extra_header, long *status, json_t **out, char *err,
                size_t errlen)
{
    char *url = NULL;
    const char *headers[3] = {c->key_header, extra_header, NULL};
    struct httpc_resp resp;
    json_t *parsed = NULL;
    if (status)
        *status = 0;
    if (out)
        *out = NULL;
    if (asprintf(&url, "%s%s%s%s", c->base, path, query ? "?" : "", query ? query : "") < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = httpc_json(c->http, method, url, headers, body, &resp, &parsed, err, errlen);
    apistat_record(&c->st, ESPO_SYSTEM, method, resp.status, resp.elapsed_ms);
    if (rc == 0 && resp.status >= 400 && errlen > 0) /* EspoCRM's reason, recorded 03, 09 */
        snprintf(err, errlen, "%s", resp.reason ? resp.reason : "");
    if (status)
        *status = resp.status;
    if (out)
        *out = parsed;
    else
        json_decref(parsed);
    httpc_resp_clear(&resp);
    free(url);
    return rc;
}

/* "/CBeteiligte/<escaped id>" into a new string; NULL on out of memory. */
static char *entity_path(const char *id)
{
    char *esc = curl_easy_escape(NULL, id, 0);
    char *path = NULL;
    if (esc && asprintf(&path, "/CBeteiligte/%s", esc) < 0)
        path = NULL;
    curl_free(esc);
    return path;
}

int espo_current_user(struct espo *c, char *buf, size_t buflen, char *err, size_t errlen)
{
    long status;
    json_t *out;
    if (call(c, "GET", "/App/user", NULL, NULL, NULL, &status, &out, err, errlen) != 0)
        return -1;
    const char *id = json_string_value(json_object_get(json_object_get(out, "user"), "id"));
    int rc = -1;
    if (status != 200)
        snprintf(err, errlen, "GET App/user answered %ld", status);
    else if (!id || !*id)
        snprintf(err, errlen, "GET App/user: no user id in the answer");
    else if ((size_t)snprintf(buf, buflen, "%s", id) >= buflen)
        snprintf(err, errlen, "GET App/user: user id too long");
    else
        rc = 0;
    json_decref(out);
    return rc;
}

static int entity_call(struct espo *c, const char *method, const char *id, const json_t *body,
                       const char *extra_header, long *status, json_t **out, char *err,
                       size_t errlen)
{
    char *path = entity_path(id);
    if (!path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = call(c, method, path, NULL, body, extra_header, status, out, err, errlen);
    free(path);
    return rc;
}

int espo_get(struct espo *c, const char *id, long *status, json_t **out, char *err, size_t errlen)
{
    return entity_call(c, "GET", id, NULL, NULL, status, out, err, errlen);
}

int espo_put(struct espo *c, const char *id, const json_t *attrs, long long version, long *status,
             json_t **out, char *err, size_t errlen)
{
    char version_header[64];
    snprintf(version_header, sizeof version_header, "X-Version-Number: %lld", version);
    return entity_call(c, "PUT", id, attrs, version >= 0 ? version_header : NULL, status, out, err,
                       errlen);
}

int espo_post(struct espo *c, const json_t *attrs, long *status, json_t **out, char *err,
              size_t errlen)
{
    return call(c, "POST", "/CBeteiligte", NULL, attrs, NULL, status, out, err, errlen);
}

int espo_notify(struct espo *c, const char *user_id, const char *message, long *status, char *err,
                size_t errlen)
{
    json_t *body = json_pack("{s:s,s:s,s:s,s:[s]}", "type", "Post", "post", message, "targetType",
                             "users", "usersIds", user_id ? user_id : "");
    if (!body) {
        snprintf(err, errlen, "notification: invalid text");
        return -1;
    }
    int rc = call(c, "POST", "/Note", NULL, body, NULL, status, NULL, err, errlen);
    json_decref(body);
    return rc;
}

int espo_app_user(struct espo *c, long *status, json_t **out, char *err, size_t errlen)
{
    return call(c, "GET", "/App/user", NULL, NULL, NULL, status, out, err, errlen);
}

int espo_metadata(struct espo *c, const char *key, long *status, json_t **out, char *err,
                  size_t errlen)
{
    char *esc = curl_easy_escape(NULL, key, 0), *query = NULL;
    if (!esc || asprintf(&query, "key=%s", esc) < 0) {
        curl_free(esc);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    curl_free(esc);
    int rc = call(c, "GET", "/Metadata", query, NULL, NULL, status, out, err, errlen);
    free(query);
    return rc;
}

int espo_webhook_list(struct espo *c, int max_size, int offset, long *status, json_t **out,
                      char *err, size_t errlen)
{
    char query[64];
    snprintf(query, sizeof query, "offset=%d", offset > 0 ? offset : 0);
    if (max_size > 0)
        snprintf(query + strlen(query), sizeof query - strlen(query), "&maxSize=%d", max_size);
    return call(c, "GET", "/Webhook", query, NULL, NULL, status, out, err, errlen);
}

int espo_webhook_register(struct espo *c, const char *event, const char *url, long *status,
                          json_t **out, char *err, size_t errlen)
{
    json_t *body = json_pack("{s:s,s:s,s:b}", "event", event ? event : "", "url", url ? url : "",
                             "skipOwn", 1);
    if (!body) {
        snprintf(err, errlen, "webhook: invalid event or url");
        return -1;
    }
    int rc = call(c, "POST", "/Webhook", NULL, body, NULL, status, out, err, errlen);
    json_decref(body);
    return rc;
}

int espo_webhook_update(struct espo *c, const char *id, const json_t *attrs, long *status,
                        json_t **out, char *err, size_t errlen)
{
    char *esc = curl_easy_escape(NULL, id ? id : "", 0), *path = NULL;
    if (!esc || asprintf(&path, "/Webhook/%s", esc) < 0) {
        curl_free(esc);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    curl_free(esc);
    int rc = call(c, "PUT", path, NULL, attrs, NULL, status, out, err, errlen);
    free(path);
    return rc;
}

/* Writes "&name=value", both percent-encoded; brackets in the name stay readable (EspoCRM's
 * PHP parses both forms). */
static void emit(FILE *f, const char *name, const char *value, int *first)
{
    char *ename = curl_easy_escape(NULL, name, 0);
    char *evalue = curl_easy_escape(NULL, value, 0);
    if (ename && evalue) {
        fputs(*first ? "" : "&", f);
        for (const char *p = ename; *p; p++) {
            if (strncmp(p, "%5B", 3) == 0 || strncmp(p, "%5D", 3) == 0) {
                fputc(p[2] == 'B' ? '[' : ']', f);
                p += 2;
            } else {
                fputc(*p, f);
            }
        }
        fprintf(f, "=%s", evalue);
        *first = 0;
    }
    curl_free(ename);
    curl_free(evalue);
}

/* Emits every scalar below v as name[key]...=value. */
static void flatten(FILE *f, const char *name, const json_t *v, int *first)
{
    char sub[512];
    if (json_is_object(v)) {
        const char *k;
        json_t *item;
        json_object_foreach((json_t *)v, k, item)
        {
            snprintf(sub, sizeof sub, "%s[%s]", name, k);
            flatten(f, sub, item, first);
        }
        return;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            snprintf(sub, sizeof sub, "%s[%zu]", name, i);
            flatten(f, sub, item, first);
        }
        return;
    }
    char num[64];
    const char *text = "";
    if (json_is_string(v)) {
        text = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        text = num;
    } else if (json_is_real(v)) {
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        text = num;
    } else if (json_is_boolean(v)) {
        text = json_is_true(v) ? "true" : "false";
    }
    emit(f, name, text, first);
}

char *espo_query_string(const struct espo_query *q)
{
    char *buf = NULL;
    size_t len = 0;
    int first = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "offset=%d", q->offset > 0 ? q->offset : 0);
    if (q->max_size > 0)
        fprintf(f, "&maxSize=%d", q->max_size);
    if (q->order_by)
        emit(f, "orderBy", q->order_by, &first);
    if (q->order)
        emit(f, "order", q->order, &first);
    if (q->select)
        emit(f, "select", q->select, &first);
    if (q->where)
        flatten(f, "where", q->where, &first);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int espo_list(struct espo *c, const struct espo_query *q, long *status, json_t **out, char *err,
              size_t errlen)
{
    char *query = espo_query_string(q);
    if (!query) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = call(c, "GET", "/CBeteiligte", query, NULL, NULL, status, out, err, errlen);
    free(query);
    return rc;
}
