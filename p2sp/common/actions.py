"""The data of each action, as msgspec Structs (docs/protocol.md, "Actions available now"
and "History, edits, receipts and search").

msgspec validates types and bounds while it decodes a request's ``data``
against its action's Struct, so a malformed request costs no Python-level
checking and its error names the field. The field rules here (name lengths
and characters) are the protocol's, shared by the server and the clients;
the rules that depend on server settings or on state (password strength,
message length, friendship) live in the services.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from p2sp.common.limits import (
    ACKS_PER_REQUEST,
    CLIENT_MSG_ID_MAX,
    CONVERSATIONS_PAGE_MAX,
    GROUP_DESCRIPTION_MAX,
    GROUP_NAME_MAX,
    GROUP_NAME_PATTERN,
    HISTORY_PAGE_MAX,
    SEARCH_PAGE_MAX,
    SEARCH_QUERY_MAX,
    USERNAME_MAX,
    USERNAME_MIN,
    USERNAME_PATTERN,
)

# --- field types -----------------------------------------------------------

#: 1-32 letters (any script), digits, ``_ . -`` (docs/protocol.md, "Field rules");
#: the look-alike and script rules of registration are ``p2sp.common.usernames``.
Username = Annotated[
    str,
    msgspec.Meta(min_length=USERNAME_MIN, max_length=USERNAME_MAX, pattern=USERNAME_PATTERN),
]
#: The 8-128 rule is the account service's (``weak_password`` at registration;
#: a longer password never reaches the hasher), bounded here only by the frame.
Password = str
#: 1-64 characters, no control characters.
GroupName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=GROUP_NAME_MAX, pattern=GROUP_NAME_PATTERN)
]
#: Non-empty; the upper bound is a server setting, checked by the service.
Text = Annotated[str, msgspec.Meta(min_length=1)]
ClientMsgId = Annotated[str, msgspec.Meta(min_length=1, max_length=CLIENT_MSG_ID_MAX)]
Id = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


# --- action data ------------------------------------------------------------


class Empty(msgspec.Struct):
    """Actions without data (``ping``, ``logout`` ...); unknown fields are ignored."""


class Credentials(msgspec.Struct):
    """``reg`` and ``login``."""

    username: Username
    password: Password


class NamedUser(msgspec.Struct):
    """``add``: the user named."""

    username: Username


class SendDirect(msgspec.Struct):
    """``send``: a direct message; ``client_msg_id`` makes a resend land once."""

    to: Username
    text: Text
    client_msg_id: ClientMsgId | None = None
    reply_to: Id | None = None


class AckItem(msgspec.Struct):
    conversation_id: Id
    seq: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class Ack(msgspec.Struct):
    """``ack``: cumulative per conversation, bounded per request."""

    acks: Annotated[list[AckItem], msgspec.Meta(min_length=1, max_length=ACKS_PER_REQUEST)]


class NewGroup(msgspec.Struct):
    """``newgroup``; the cap on ``max_members`` is a server setting."""

    name: GroupName
    public: bool = False
    description: Annotated[str, msgspec.Meta(max_length=GROUP_DESCRIPTION_MAX)] | None = None
    max_members: Annotated[int, msgspec.Meta(ge=2)] | None = None


class GroupRef(msgspec.Struct):
    """``delgroup``, ``joingroup``, ``leavegroup``."""

    group_id: Id


class GroupMember(msgspec.Struct):
    """``addgroupuser``, ``delgroupuser``."""

    group_id: Id
    username: Username


class GroupRole(msgspec.Struct):
    """``setgrouprole``."""

    group_id: Id
    username: Username
    role: Literal["admin", "member"]


class SendGroup(msgspec.Struct):
    """``sendgroup``."""

    group_id: Id
    text: Text
    client_msg_id: ClientMsgId | None = None
    reply_to: Id | None = None


class AllUsers(msgspec.Struct):
    online_only: bool = False


class AdminSend(msgspec.Struct):
    username: Username
    text: Text


class GroupSelector(msgspec.Struct):
    """A group by id, or by name and creator, as the original P2SP admin commands name it."""

    group_id: Id | None = None
    name: GroupName | None = None
    creator: Username | None = None


class AdminSendGroup(GroupSelector, kw_only=True):
    text: Text


class Broadcast(msgspec.Struct):
    text: Text


# --- history, edits, receipts, search
# (docs/protocol.md, "History, edits, receipts and search") ---------------------

Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
PageLimit = Annotated[int, msgspec.Meta(ge=1, le=HISTORY_PAGE_MAX)]


class Conversations(msgspec.Struct):
    """``conversations``: newest activity first; ``before`` (+ ``before_id``) pages on."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=CONVERSATIONS_PAGE_MAX)] = 50
    before: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None
    before_id: Id | None = None


class History(msgspec.Struct):
    """``history`` of one conversation, named by exactly one of three ways."""

    conversation_id: Id | None = None
    username: Username | None = None
    group_id: Id | None = None
    before_seq: Seq | None = None
    after_seq: Seq | None = None
    limit: PageLimit = 50


class Edit(msgspec.Struct):
    message_id: Id
    text: Text


class MessageRef(msgspec.Struct):
    """``retract``, ``edits``: one message by id."""

    message_id: Id


class Read(msgspec.Struct):
    conversation_id: Id
    seq: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class Search(msgspec.Struct, rename={"sender": "from"}):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=SEARCH_QUERY_MAX)]
    conversation_id: Id | None = None
    sender: Username | None = None
    before_id: Id | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=SEARCH_PAGE_MAX)] = 20
