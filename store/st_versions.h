/*  st_versions.h: the versions of a message, and each version's votes.

    A regenerate adds a version of the answer instead of overwriting it
    (issue 15); the user picks which one is shown (the active version).

    Where things live (docs/store.md, "Versions"):
      - The message record keeps the ACTIVE version's fields (content,
        model, thought_process, regenerated, edited, usage, finish_reason,
        generation), so every read of a
        message is still one lookup, plus version (active, 1-based),
        version_count, version_id (the active one's id) and version_ids
        (index i -> version i + 1). A message written before versions has
        none of these: it is version 1 of 1, and its id is that version's.
      - Version 1's id IS the message id, so ids clients hold stay valid;
        later versions get "ver_<uuid>".
      - versions DBI, key = messages key + be32(n): version n's record
        {id, message_id, n, content, model?, thought_process?, regenerated,
        edited, created_at}. Records exist only once a message has a second
        version: adding it first writes version 1 from the message record,
        in the same txn. From then on the record of the active version
        always holds the message's version fields (st_versions_sync after
        any change of them), so switching never loses anything.
      - versions DBI, key = messages key itself: the head, a binary record
        0xC1, active (be32), count (be32), the active version's id. It
        exists with the records and lets a vote find its version without
        decoding the message (a vote is the hottest write). No head:
        version 1 of 1.
      - votes DBI: version 1's counts stay under the messages key (so
        counts written before versions are version 1's); version n >= 2's
        under messages key + be32(n).
      - feedback DBI: version 1's votes stay under message_id \0 user;
        version n >= 2's under message_id \0 user \0 be32(n). One prefix
        (message_id \0) still covers every vote on the message.

    Functions that change a message change `msg` in memory only: the
    caller puts it under its messages key in the same txn (it usually
    changes other fields too). Every function runs inside the caller's txn
    and returns 0 or a CM_E* code of st_db.h; on an error the caller aborts
    the txn, so nothing they wrote stays.                                  */
#ifndef ST_VERSIONS_H_INCLUDED
#define ST_VERSIONS_H_INCLUDED

#include "cm_msg.h"
#include "st_db.h"

#include <stdbool.h>
#include <stdint.h>

//  Bytes a version's key adds to its messages key.
#define ST_VERSIONS_KEY_EXTRA 4

//  The message's active version (1-based) and how many it has: 1 and 1 for
//  a message without versions. The active version's id (borrowed from msg):
//  version_id, or the message id.
uint32_t st_versions_active (const cm_value_t *msg);
uint32_t st_versions_count (const cm_value_t *msg);
const char *st_versions_active_id (const cm_value_t *msg);
//  The ids of every version, index i -> version i + 1 (a new array).
cm_value_t *st_versions_ids (const cm_value_t *msg);

//  Keys. out has room for mkey_len + ST_VERSIONS_KEY_EXTRA bytes (the
//  feedback key: strlen (message_id) + 1 + strlen (user) + 5). Each
//  returns the key's length.
size_t st_versions_key (unsigned char *out, const void *mkey, size_t mkey_len, uint32_t n);
size_t st_versions_votes_key (unsigned char *out, const void *mkey, size_t mkey_len, uint32_t n);
size_t st_versions_feedback_key (char *out, const char *message_id, const char *user, uint32_t n);

//  The head of the message at mkey without decoding it: the active
//  version, the count and the active version's id (into id, CM_ID_MAX +
//  CM_MESSAGE_ID_MAX + 1 bytes; "" when the message has one version: its
//  id is the message id). 0 (1, 1, "" without a head) or an st_db error.
int st_versions_head (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                      uint32_t *active, uint32_t *count, char *id);

//  The message takes the version fields of `fields` (absent there: absent
//  from msg), in memory: an answer written in place.
void st_versions_take (cm_value_t *msg, const cm_value_t *fields);

//  Adds version count + 1 made of `fields` (the version fields present
//  there; absent ones are absent from the version) and makes it active:
//  the message takes its fields. Writes version 1's record first when the
//  message had one version. *index (may be NULL) gets the new version's
//  number. CM_EBADSTATE when the message already has CM_VERSIONS_MAX.
int st_versions_add (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                     cm_value_t *msg, const cm_value_t *fields, int64_t now, uint32_t *index);

//  Makes version n active: the message takes its fields. *changed (may
//  be NULL) is false when n was already active, and then nothing is
//  written (msg is unchanged). CM_ENOVERSION when n is not 1..count.
int st_versions_activate (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                          cm_value_t *msg, uint32_t n, bool *changed);

//  After the message's version fields changed in place (an edit): the
//  active version's record takes them. Writes nothing for a message of one
//  version (its record is the message).
int st_versions_sync (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                      const cm_value_t *msg, int64_t now);

//  Version n of the message as a record (a new map, caller owns): the
//  stored one, or for a message of one version, one made from msg.
//  CM_ENOVERSION when n is not 1..count.
int st_versions_get (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                     const cm_value_t *msg, uint32_t n, cm_value_t **out);

//  Vote counts of version n. Without a votes record they are 0, except
//  version 1's of a message written before the votes DBI: those are in the
//  message map (msg when the caller has it decoded, else read here).
int st_versions_votes_get (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                           uint32_t n, const cm_value_t *msg, int64_t *ups, int64_t *downs);
int st_versions_votes_put (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                           uint32_t n, int64_t ups, int64_t downs);

//  Deletes the head, every version record and the votes of versions >= 2
//  of the message at mkey (version 1's votes and the feedback records are
//  the message's: its delete removes them).
int st_versions_delete (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len);

#endif
