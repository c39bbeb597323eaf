/* espocrm_list.c: GET /CBeteiligte, EspoCRM 9.1.5's list query (SPEC §7.1; recording 05 of
 * tests/contract/espocrm-9.1.5): the where[] tree from the query string, its checks and matching,
 * order, paging and select; also the sort the webhook list uses. Answers are new JSON the server
 * frees.
 *
 * What EspoCRM does, as recorded (05): where types equals, notEquals, in, isNull, isNotNull,
 * lessThan, lessThanOrEquals, greaterThan, greaterThanOrEquals, or, and (else 400 "Unknown where
 * item type"); unknown where attribute or orderBy → 400; maxSize > 200 → 403; default order
 * createdAt desc, ties by id; select adds id, the order attribute, createdById, assignedUserId
 * and ignores unknown and list attributes; X-No-Total → total -1. */
#include "espocrm_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Not in list items (05 step 33). */
static const char *const NOT_LISTED[] = {"emailAddressData", "phoneNumberData", "teamsIds",
                                         "teamsNames",       "isFollowed",      "followersIds",
                                         "followersNames"};
/* Not usable in where, orderBy or select (05 step 32). */
static const char *const NOT_QUERYABLE[] = {
    "emailAddressData", "phoneNumberData", "teamsIds",      "teamsNames",     "isFollowed",
    "followersIds",     "followersNames",  "createdByName", "modifiedByName", "assignedUserName"};

static bool queryable(const struct esim *e, const char *k)
{
    return esim__in_list(k, esim__attrs, esim__nattrs) && !esim__attr_dropped(e, k) &&
           !ESIM_IN(k, NOT_QUERYABLE);
}

/* ---- the query string --------------------------------------------------------------------- */

/* Puts value at the bracket path of key ("where[0][value][]") into tree. */
static void tree_put(json_t *tree, const char *key, const char *value)
{
    char seg[256];
    const char *p = key;
    size_t n = strcspn(p, "[");
    json_t *node = tree;
    snprintf(seg, sizeof seg, "%.*s", (int)n, p);
    p += n;
    while (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close)
            break;
        json_t *child = json_object_get(node, seg);
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(node, seg, child);
        }
        node = child;
        if (close == p + 1)
            snprintf(seg, sizeof seg, "%zu", json_object_size(node)); /* "[]": append */
        else
            snprintf(seg, sizeof seg, "%.*s", (int)(close - p - 1), p + 1);
        p = close + 1;
    }
    json_object_set_new(node, seg, json_string(value));
}

static json_t *query_tree(const char *query)
{
    json_t *tree = json_object();
    while (query && *query) {
        size_t len = strcspn(query, "&");
        const char *eq = memchr(query, '=', len);
        size_t klen = eq ? (size_t)(eq - query) : len;
        char key[512], value[2048];
        httpd_url_decode(query, klen, key, sizeof key);
        httpd_url_decode(eq ? eq + 1 : "", eq ? len - klen - 1 : 0, value, sizeof value);
        if (*key)
            tree_put(tree, key, value);
        query += len + (query[len] == '&');
    }
    return tree;
}

/* The values of an object-as-array ({"0":a,"1":b}), an array, or a scalar (one value). */
static json_t *as_list(json_t *v)
{
    json_t *out = json_array();
    if (json_is_object(v)) {
        const char *k;
        json_t *item;
        json_object_foreach(v, k, item)
        {
            json_array_append(out, item);
        }
    } else if (json_is_array(v)) {
        json_array_extend(out, v);
    } else if (v) {
        json_array_append(out, v);
    }
    return out;
}

/* <0, 0, >0 comparing a stored value with a query value (always text). */
static int compare(const json_t *field, const char *text)
{
    if (json_is_number(field)) {
        double a = json_number_value(field), b = strtod(text, NULL);
        return a < b ? -1 : a > b;
    }
    if (json_is_boolean(field))
        return (json_is_true(field) ? 1 : 0) -
               (strcmp(text, "true") == 0 || strcmp(text, "1") == 0 ? 1 : 0);
    return strcmp(json_is_string(field) ? json_string_value(field) : "", text);
}

/* clang-format off */
static const char *const WHERE_TYPES[] = {
    "equals", "notEquals", "in", "isNull", "isNotNull", "lessThan", "lessThanOrEquals",
    "greaterThan", "greaterThanOrEquals", "or", "and"};
/* clang-format on */

/* Checks a where item (05 steps 8, 28, 29): 0, or -1 with reason. */
static int where_check(const struct esim *e, json_t *cond, char *reason, size_t len)
{
    const char *type = esim__jstr(cond, "type");
    if (!type || !ESIM_IN(type, WHERE_TYPES)) {
        snprintf(reason, len, "Unknown where item type '%s'.", type ? type : "");
        return -1;
    }
    if (strcmp(type, "or") == 0 || strcmp(type, "and") == 0) {
        json_t *subs = as_list(json_object_get(cond, "value")), *sub;
        size_t i;
        int rc = 0;
        json_array_foreach(subs, i, sub)
        {
            if (rc == 0)
                rc = where_check(e, sub, reason, len);
        }
        json_decref(subs);
        return rc;
    }
    const char *attr = esim__jstr(cond, "attribute");
    if (!attr || !queryable(e, attr)) {
        snprintf(reason, len, "Not existing attribute '%s' in where.", attr ? attr : "");
        return -1;
    }
    return 0;
}

/* Whether ent matches cond (SQL semantics: a null stored value matches no comparison). */
static bool where_match(const json_t *ent, json_t *cond)
{
    const char *type = esim__jstr(cond, "type");
    json_t *value = json_object_get(cond, "value");
    if (strcmp(type, "or") == 0 || strcmp(type, "and") == 0) {
        bool is_or = type[0] == 'o', result = !is_or;
        json_t *subs = as_list(value), *sub;
        size_t i;
        json_array_foreach(subs, i, sub)
        {
            bool m = where_match(ent, sub);
            if (is_or ? m : !m) {
                result = is_or;
                break;
            }
        }
        json_decref(subs);
        return result;
    }
    json_t *field = json_object_get(ent, esim__jstr(cond, "attribute"));
    bool null = !field || json_is_null(field);
    if (strcmp(type, "isNull") == 0)
        return null;
    if (strcmp(type, "isNotNull") == 0)
        return !null;
    if (null)
        return false;
    if (strcmp(type, "in") == 0) {
        json_t *list = as_list(value), *item;
        size_t i;
        bool found = false;
        json_array_foreach(list, i, item)
        {
            found |= json_is_string(item) && compare(field, json_string_value(item)) == 0;
        }
        json_decref(list);
        return found;
    }
    const char *text = json_string_value(value);
    if (!text)
        return false;
    int c = compare(field, text);
    if (strcmp(type, "equals") == 0)
        return c == 0;
    if (strcmp(type, "notEquals") == 0)
        return c != 0;
    if (strcmp(type, "lessThan") == 0)
        return c < 0;
    if (strcmp(type, "lessThanOrEquals") == 0)
        return c <= 0;
    if (strcmp(type, "greaterThan") == 0)
        return c > 0;
    return c >= 0;
}

static const char *g_order_by; /* qsort has no user pointer; the loop is single-threaded */
static int g_order_desc;

static int by_order(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_t *fx = json_object_get(x, g_order_by), *fy = json_object_get(y, g_order_by);
    bool nx = !fx || json_is_null(fx), ny = !fy || json_is_null(fy);
    int c;
    if (nx || ny)
        c = nx && ny ? 0 : nx ? -1 : 1; /* NULL first, as MySQL sorts ascending */
    else if (json_is_number(fx) && json_is_number(fy))
        c = json_number_value(fx) < json_number_value(fy)   ? -1
            : json_number_value(fx) > json_number_value(fy) ? 1
                                                            : 0;
    else
        c = strcmp(json_is_string(fx) ? json_string_value(fx) : "",
                   json_is_string(fy) ? json_string_value(fy) : "");
    if (c == 0) /* ties by id, in the same direction (05 steps 22, 25, 26) */
        c = strcmp(esim__jstr(x, "id"), esim__jstr(y, "id"));
    return g_order_desc ? -c : c;
}

void esim__sort_records(json_t **items, size_t n, const char *order_by, bool desc)
{
    g_order_by = order_by;
    g_order_desc = desc;
    qsort(items, n, sizeof *items, by_order);
}

/* Whether the comma-separated list has item k. */
static bool in_csv(const char *list, const char *k)
{
    size_t n = strlen(k);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, k, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* A list item: every listed attribute, or with select: id, the selected ones, the order
 * attribute, createdById and assignedUserId (05 steps 9-33). */
static json_t *list_item(const struct esim *e, const json_t *ent, const char *select,
                         const char *order_by)
{
    json_t *out = json_object();
    for (size_t i = 0; i < esim__nattrs; i++) {
        const char *k = esim__attrs[i];
        if (esim__attr_dropped(e, k) || ESIM_IN(k, NOT_LISTED))
            continue;
        if (select) {
            bool want = strcmp(k, "id") == 0 || strcmp(k, order_by) == 0 ||
                        strcmp(k, "createdById") == 0 || strcmp(k, "assignedUserId") == 0;
            if (!want && queryable(e, k))
                want = in_csv(select, k);
            if (!want)
                continue;
        }
        json_t *v = json_object_get(ent, k);
        json_object_set_new(out, k, v ? json_deep_copy(v) : json_null());
    }
    return out;
}

void esim__on_list(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!esim__authenticate(e, req, &a))
        return;
    json_t *q = query_tree(httpd_req_query(req));
    json_t *where = as_list(json_object_get(q, "where")), *cond;
    const char *ms = esim__jstr(q, "maxSize"), *os = esim__jstr(q, "offset");
    const char *order_by = esim__jstr(q, "orderBy"), *order = esim__jstr(q, "order");
    const char *select = esim__jstr(q, "select");
    long max = ms ? strtol(ms, NULL, 10) : ESIM_LIST_MAX, off = os ? strtol(os, NULL, 10) : 0;
    char reason[256] = "";
    size_t i;
    int bad = 0;
    if (max > ESIM_LIST_MAX) {
        esim__respond(req, 403, "Max size should not exceed 200. Use offset and limit.", NULL);
        goto out;
    }
    json_array_foreach(where, i, cond)
    {
        if (!bad)
            bad = where_check(e, cond, reason, sizeof reason);
    }
    if (!bad && order_by && !queryable(e, order_by)) {
        snprintf(reason, sizeof reason, "Order by non-existing field '%s'.", order_by);
        bad = 1;
    }
    if (bad) {
        esim__respond(req, 400, reason, NULL);
        goto out;
    }
    size_t n = json_object_size(e->entities), count = 0;
    json_t **hits = calloc(n ? n : 1, sizeof *hits), *ent;
    const char *id;
    json_object_foreach(e->entities, id, ent)
    {
        bool all = true;
        json_array_foreach(where, i, cond)
        {
            all = all && where_match(ent, cond);
        }
        if (all)
            hits[count++] = ent;
    }
    const char *by = order_by ? order_by : "createdAt";
    esim__sort_records(hits, count, by,
                       order_by ? order && strcasecmp(order, "desc") == 0
                                : !(order && strcasecmp(order, "asc") == 0));
    max = max <= 0 ? ESIM_LIST_MAX : max;
    off = off < 0 ? 0 : off;
    json_t *list = json_array();
    for (size_t j = (size_t)off; j < count && json_array_size(list) < (size_t)max; j++)
        json_array_append_new(list, list_item(e, hits[j], select, by));
    free(hits);
    const char *no_total = httpd_req_header(req, "X-No-Total");
    json_int_t total = no_total && strcmp(no_total, "true") == 0 ? -1 : (json_int_t)count;
    esim__respond(req, 200, NULL, json_pack("{s:I,s:o}", "total", total, "list", list));
out:
    json_decref(where);
    json_decref(q);
}
