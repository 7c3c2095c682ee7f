"""The protocol's fixed limits, in one place for the server and every client.

The envelope schemas (``p2sp.common.message``), the services that enforce
the rules and the clients' help texts all read these names, so a limit is
changed here once. Limits an operator may tune are server settings instead
(``p2sp.server.config``: ``max_text``, ``max_frame``, ``max_json_depth`` ...).
"""

from __future__ import annotations

#: A username: 1-32 characters (docs/protocol.md, "Usernames").
USERNAME_MIN = 1
USERNAME_MAX = 32
#: Letters (any script), digits, ``_ . -``; the full rule is ``p2sp.common.usernames``.
USERNAME_PATTERN = r"^[\w.\-]+\Z"

#: A password: 8-128 characters. The envelope refuses longer ones before
#: they reach the hasher; registration refuses shorter ones (``weak_password``).
PASSWORD_MIN = 8
PASSWORD_MAX = 128

#: A group's name: 1-64 characters, no control characters.
GROUP_NAME_MAX = 64
GROUP_NAME_PATTERN = r"^[^\x00-\x1f\x7f]+\Z"
GROUP_DESCRIPTION_MAX = 1000
#: Groups one user may have created at once (``group_limit``).
GROUPS_PER_CREATOR = 10

#: ``client_msg_id``: any string of 1-64 characters, unique per sender.
CLIENT_MSG_ID_MAX = 64
#: Cursor moves one ``ack`` request may carry.
ACKS_PER_REQUEST = 1000

#: Rows one ``conversations`` / ``history`` / ``search`` page may ask for.
CONVERSATIONS_PAGE_MAX = 200
HISTORY_PAGE_MAX = 200
SEARCH_PAGE_MAX = 100
#: Characters of a search query.
SEARCH_QUERY_MAX = 200
