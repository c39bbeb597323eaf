/* espocrm_notes.c: EspoCRM 9.1.5's stream notes and notifications (SPEC §7.1, §8.1; recordings
 * 06 and 11 of tests/contract/espocrm-9.1.5): POST /Note, a record's stream, POST and GET
 * /Notification, the not-read count, and GET /_sim/notifications. Notes and notifications live
 * in e->notes and e->notifications; answers are new JSON the server frees.
 *
 * What EspoCRM does, as recorded (06, 11): POST /Notification is 403 "No create access." but for
 * an admin; a stream Post notifies the record's followers; a Post with targetType users notifies
 * each user (403 without the Message permission, 403 for an unknown user); GET /Notification
 * lists newest first (total -1 more, -2 no more) and marks the listed read.
 *
 * Not recorded, assumed: a stream post notifies followers only (@mentions of others are not
 * notified). */
#include "espocrm_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- notes and notifications -------------------------------------------------------------- */

json_t *esim__note_new(struct esim *e, const struct esim_actor *a, const char *type,
                       const char *post, const json_t *parent, json_t *users /* stolen */,
                       json_t *data /* stolen */)
{
    char id[24], now[24];
    esim__new_id(e, id, sizeof id);
    esim__now_text(e, now, sizeof now);
    json_t *n = json_object();
    json_object_set_new(n, "id", json_string(id));
    json_object_set_new(n, "deleted", json_false());
    json_object_set_new(n, "post", post ? json_string(post) : json_null());
    json_object_set_new(n, "data", data ? data : json_object());
    json_object_set_new(n, "type", json_string(type));
    json_object_set_new(n, "targetType", users ? json_string("users") : json_null());
    json_object_set_new(n, "number", json_integer(++e->note_number));
    json_object_set_new(n, "isGlobal", json_false());
    json_object_set_new(n, "createdByGender", json_null());
    json_object_set_new(n, "isInternal", json_false());
    json_object_set_new(n, "isPinned", json_false());
    json_object_set_new(n, "reactionCounts", json_null());
    json_object_set_new(n, "myReactions", json_array());
    json_object_set_new(n, "createdAt", json_string(now));
    json_object_set_new(n, "modifiedAt", json_string(now));
    json_object_set_new(n, "parentId",
                        parent ? json_deep_copy(json_object_get(parent, "id")) : json_null());
    json_object_set_new(n, "parentType", parent ? json_string(ESIM_ENTITY) : json_null());
    json_object_set_new(n, "parentName",
                        parent ? json_deep_copy(json_object_get(parent, "name")) : json_null());
    json_object_set_new(n, "relatedId", json_null());
    json_object_set_new(n, "relatedType", json_null());
    json_object_set_new(n, "attachmentsIds", json_array());
    json_object_set_new(n, "attachmentsNames", json_object());
    json_t *names = json_object(), *u;
    size_t i;
    json_array_foreach(users, i, u)
    {
        const char *uid = json_string_value(u);
        json_object_set_new(names, uid, json_string(esim__user_name(e, uid)));
    }
    json_object_set_new(n, "usersIds", users ? users : json_array());
    json_object_set_new(n, "usersNames", names);
    json_object_set_new(n, "createdById", json_string(a->id));
    json_object_set_new(n, "createdByName", json_string(esim__actor_name(e, a)));
    json_object_set_new(n, "modifiedById", json_null());
    json_object_set_new(n, "modifiedByName", json_null());
    json_object_set_new(n, "superParentId", json_null());
    json_object_set_new(n, "superParentType", json_null());
    json_object_set_new(n, "attachmentsTypes", json_object());
    json_array_append_new(e->notes, n);
    return n; /* borrowed */
}

/* A notification for user: type Note (note given) or Message. Borrowed. */
static json_t *notify(struct esim *e, const char *user, const json_t *note, const char *message,
                      const char *created_by)
{
    char id[24], now[24];
    esim__new_id(e, id, sizeof id);
    esim__now_text(e, now, sizeof now);
    json_t *n = json_object();
    json_object_set_new(n, "id", json_string(id));
    json_object_set_new(n, "deleted", json_false());
    json_object_set_new(n, "number", json_integer(++e->notif_number));
    json_object_set_new(
        n, "data", note ? json_pack("{s:O}", "noteId", json_object_get(note, "id")) : json_null());
    json_object_set_new(n, "type", json_string(note ? "Note" : "Message"));
    json_object_set_new(n, "read", json_false());
    json_object_set_new(n, "emailIsProcessed", json_false());
    json_object_set_new(n, "createdAt", json_string(now));
    json_object_set_new(n, "message", message ? json_string(message) : json_null());
    json_object_set_new(n, "userId", json_string(user));
    json_object_set_new(n, "userName", json_string(esim__user_name(e, user)));
    json_object_set_new(n, "relatedId",
                        note ? json_deep_copy(json_object_get(note, "id")) : json_null());
    json_object_set_new(n, "relatedType", note ? json_string("Note") : json_null());
    json_object_set_new(n, "relatedParentId",
                        note ? json_deep_copy(json_object_get(note, "parentId")) : json_null());
    json_object_set_new(n, "relatedParentType",
                        note ? json_deep_copy(json_object_get(note, "parentType")) : json_null());
    json_object_set_new(n, "createdById", created_by ? json_string(created_by) : json_null());
    json_array_append_new(e->notifications, n);
    return n;
}

/* A new object with keys of src in the given order (absent ones as null). */
static json_t *pick(const json_t *src, const char *const *keys, size_t n)
{
    json_t *out = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(src, keys[i]);
        json_object_set_new(out, keys[i], v ? json_deep_copy(v) : json_null());
    }
    return out;
}
#define PICK(src, keys) pick((src), (keys), sizeof(keys) / sizeof((keys)[0]))

/* ---- the routes (06, 11) ------------------------------------------------------------------ */

/* clang-format off */
static const char *const NOTE_ANSWER_PARENT[] = {
    "id", "deleted", "post", "data", "type", "isInternal", "reactionCounts", "myReactions",
    "createdAt", "modifiedAt", "parentId", "parentType", "parentName", "relatedName",
    "attachmentsIds", "attachmentsNames", "createdById", "createdByName", "modifiedByName",
    "attachmentsTypes"};
static const char *const NOTE_ANSWER_USERS[] = {
    "id", "deleted", "post", "data", "type", "targetType", "isInternal", "reactionCounts",
    "myReactions", "createdAt", "modifiedAt", "parentName", "relatedName", "attachmentsIds",
    "attachmentsNames", "usersIds", "usersNames", "createdById", "createdByName",
    "modifiedByName", "attachmentsTypes"};
static const char *const NOTE_DATA_PARENT[] = {
    "id", "deleted", "post", "data", "type", "targetType", "number", "isGlobal",
    "createdByGender", "isInternal", "isPinned", "createdAt", "modifiedAt", "parentId",
    "parentType", "parentName", "relatedId", "relatedType", "attachmentsIds", "attachmentsNames",
    "createdById", "createdByName", "modifiedById", "modifiedByName", "superParentId",
    "superParentType", "attachmentsTypes"};
static const char *const NOTE_DATA_USERS[] = {
    "id", "deleted", "post", "data", "type", "targetType", "number", "isGlobal",
    "createdByGender", "isInternal", "isPinned", "createdAt", "modifiedAt", "parentId",
    "parentType", "relatedId", "relatedType", "attachmentsIds", "attachmentsNames", "usersIds",
    "usersNames", "createdById", "createdByName", "modifiedById", "modifiedByName",
    "superParentId", "superParentType", "attachmentsTypes"};
static const char *const STREAM_POST[] = {
    "id", "deleted", "post", "data", "type", "targetType", "number", "isGlobal",
    "createdByGender", "isInternal", "isPinned", "reactionCounts", "myReactions", "createdAt",
    "modifiedAt", "parentId", "parentType", "relatedId", "relatedType", "attachmentsIds",
    "attachmentsNames", "createdById", "createdByName", "modifiedById", "modifiedByName",
    "superParentId", "superParentType", "attachmentsTypes"};
static const char *const STREAM_CREATE[] = {
    "id", "deleted", "post", "data", "type", "targetType", "number", "isGlobal",
    "createdByGender", "isInternal", "isPinned", "reactionCounts", "myReactions", "createdAt",
    "modifiedAt", "parentId", "parentType", "relatedId", "relatedType", "createdById",
    "createdByName", "modifiedById", "modifiedByName", "superParentId", "superParentType"};
static const char *const NOTIFICATION_LISTED[] = {
    "id", "deleted", "number", "data", "noteData", "type", "read", "emailIsProcessed",
    "createdAt", "message", "userId", "userName", "relatedId", "relatedType", "relatedParentId",
    "relatedParentType", "createdById"};
static const char *const NOTIFICATION_CREATED[] = {
    "id", "deleted", "type", "read", "emailIsProcessed", "createdAt", "message", "userId",
    "userName", "relatedName", "relatedParentName", "createdById", "createdByName"};
/* clang-format on */

static json_t *note_find(const struct esim *e, const char *id)
{
    size_t i;
    json_t *n;
    json_array_foreach(e->notes, i, n)
    {
        if (id && strcmp(esim__jstr(n, "id"), id) == 0)
            return n;
    }
    return NULL;
}

/* POST /Note: a stream Post on a record (its followers are notified) or a direct message to
 * users (each is notified). */
void esim__on_note(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    json_t *body = esim__authenticate(e, req, &a) ? esim__body_object(req) : NULL;
    if (!body)
        return;
    const char *type = esim__jstr(body, "type") ? esim__jstr(body, "type") : "Post";
    const char *post = esim__jstr(body, "post"), *target = esim__jstr(body, "targetType");
    json_t *v;
    size_t i;
    if (target && strcmp(target, "users") == 0) {
        json_t *ids = json_object_get(body, "usersIds");
        if (a.kind == ESIM_ACTOR_API && !e->message_all) {
            json_array_foreach(ids, i, v)
            {
                if (!json_is_string(v) || strcmp(json_string_value(v), a.id) != 0) {
                    esim__respond(req, 403, "Not permitted to post to anybody except self.", NULL);
                    goto out;
                }
            }
        }
        json_t *users = json_array();
        json_array_foreach(ids, i, v)
        {
            if (!json_is_string(v) || !json_object_get(e->users, json_string_value(v))) {
                json_decref(users);
                esim__respond(
                    req, 403,
                    "Can't relate with non-existing record. entity type: Note, link: users.",
                    json_pack("{s:{s:s,s:n,s:{s:s}}}", "messageTranslation", "label",
                              "cannotRelateNonExisting", "scope", "data", "foreignEntityType",
                              "User"));
                goto out;
            }
            json_array_append(users, v);
        }
        json_t *note = esim__note_new(e, &a, type, post, NULL, users, NULL);
        json_array_foreach(json_object_get(note, "usersIds"), i, v)
        {
            if (strcmp(json_string_value(v), a.id) != 0)
                notify(e, json_string_value(v), note, NULL, NULL);
        }
        esim__respond(req, 200, NULL, PICK(note, NOTE_ANSWER_USERS));
        goto out;
    }
    const char *parent_id = esim__jstr(body, "parentId"),
               *parent_type = esim__jstr(body, "parentType");
    json_t *parent = parent_id ? json_object_get(e->entities, parent_id) : NULL;
    if (parent_id && (!parent || !parent_type || strcmp(parent_type, ESIM_ENTITY) != 0)) {
        esim__respond_not_found(req, parent_id, true);
        goto out;
    }
    json_t *note = esim__note_new(e, &a, type, post, parent, NULL, NULL);
    json_array_foreach(json_object_get(parent, "followersIds"), i, v)
    {
        if (strcmp(json_string_value(v), a.id) != 0) /* the followers (06 steps 5-8) */
            notify(e, json_string_value(v), note, NULL, NULL);
    }
    esim__respond(req, 200, NULL, PICK(note, NOTE_ANSWER_PARENT));
out:
    json_decref(body);
}

/* POST /Notification: only an admin may (06 steps 2, 3). */
void esim__on_notification_create(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!esim__authenticate(e, req, &a))
        return;
    if (a.kind != ESIM_ACTOR_ADMIN) {
        esim__respond(req, 403, "No create access.", NULL);
        return;
    }
    json_t *body = esim__body_object(req);
    if (!body)
        return;
    const char *user = esim__jstr(body, "userId");
    if (!user) {
        struct esim_vfail vf = {"userId", "required"};
        esim__respond_validation(req, &vf);
    } else {
        json_t *n = notify(e, user, NULL, esim__jstr(body, "message"), a.id);
        json_t *ans = PICK(n, NOTIFICATION_CREATED);
        json_object_set_new(ans, "createdByName", json_string(esim__actor_name(e, &a)));
        esim__respond(req, 200, NULL, ans);
    }
    json_decref(body);
}
/* GET /Notification: the user's, newest first; total -1 when more exist, else -2; the listed
 * ones are read afterwards (06 steps 4-14). */
void esim__on_notifications_list(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!esim__authenticate(e, req, &a))
        return;
    long max = esim__query_long(httpd_req_query(req), "maxSize", 20);
    long off = esim__query_long(httpd_req_query(req), "offset", 0), seen = 0;
    json_t *list = json_array(), *marked = json_array(), *n;
    bool more = false;
    for (size_t i = json_array_size(e->notifications); i-- > 0;) {
        n = json_array_get(e->notifications, i);
        if (strcmp(esim__jstr(n, "userId"), a.id) != 0 || seen++ < off)
            continue;
        if ((long)json_array_size(list) >= max) {
            more = true;
            break;
        }
        json_t *item = PICK(n, NOTIFICATION_LISTED);
        json_t *note = note_find(e, esim__jstr(json_object_get(n, "data"), "noteId"));
        if (note)
            json_object_set_new(item, "noteData",
                                esim__jstr(note, "parentId") ? PICK(note, NOTE_DATA_PARENT)
                                                             : PICK(note, NOTE_DATA_USERS));
        else
            json_object_del(item, "noteData");
        json_array_append_new(list, item);
        json_array_append(marked, n);
    }
    size_t i;
    json_array_foreach(marked, i, n)
    {
        json_object_set_new(n, "read", json_true());
    }
    json_decref(marked);
    esim__respond(req, 200, NULL, json_pack("{s:i,s:o}", "total", more ? -1 : -2, "list", list));
}

void esim__on_not_read_count(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!esim__authenticate(e, req, &a))
        return;
    size_t i;
    json_t *n;
    json_int_t count = 0;
    json_array_foreach(e->notifications, i, n)
    {
        count +=
            strcmp(esim__jstr(n, "userId"), a.id) == 0 && !json_is_true(json_object_get(n, "read"));
    }
    esim__respond(req, 200, NULL, json_integer(count));
}

/* GET /CBeteiligte/{id}/stream: the record's notes, newest first (06 step 9). */
void esim__on_stream(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!esim__authenticate(e, req, &a))
        return;
    const char *id = httpd_req_param(req, "id");
    if (!json_object_get(e->entities, id)) {
        esim__respond_not_found(req, id, true);
        return;
    }
    long max = esim__query_long(httpd_req_query(req), "maxSize", 20);
    json_t *list = json_array(), *n;
    json_int_t total = 0;
    for (size_t i = json_array_size(e->notes); i-- > 0;) {
        n = json_array_get(e->notes, i);
        if (!esim__jstr(n, "parentId") || strcmp(esim__jstr(n, "parentId"), id) != 0)
            continue;
        total++;
        if ((long)json_array_size(list) < max)
            json_array_append_new(list, strcmp(esim__jstr(n, "type"), "Create") == 0
                                            ? PICK(n, STREAM_CREATE)
                                            : PICK(n, STREAM_POST));
    }
    esim__respond(req, 200, NULL,
                  json_pack("{s:I,s:o,s:[]}", "total", total, "list", list, "pinnedList"));
}

/* GET /_sim/notifications: every notification, oldest first (SPEC §8.1). */
void esim__on_sim_notifications(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    json_t *out = json_array(), *n;
    size_t i;
    json_array_foreach(e->notifications, i, n)
    {
        json_t *note = note_find(e, esim__jstr(json_object_get(n, "data"), "noteId"));
        const char *message = note ? esim__jstr(note, "post") : esim__jstr(n, "message");
        json_array_append_new(out, json_pack("{s:O,s:s?,s:s,s:O}", "userId",
                                             json_object_get(n, "userId"), "message", message,
                                             "via", note ? "note" : "notification", "createdAt",
                                             json_object_get(n, "createdAt")));
    }
    esim__respond(req, 200, NULL, out);
}
