"""The English table of the terminal client (see ``p2sp.terminal.strings``)."""

from __future__ import annotations

from typing import Final

from p2sp.common.limits import (
    GROUP_NAME_MAX,
    GROUPS_PER_CREATOR,
    HISTORY_PAGE_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
)
from p2sp.common.usernames import RULE as USERNAME_RULE

EN: Final[dict[str, str]] = {
    # --- program ---------------------------------------------------------
    "app.description": "p2sp terminal chat client",
    "app.arg_host": "server host (default: %(default)s)",
    "app.arg_port": "server port (default: %(default)s)",
    "app.arg_lang": "language of the client: en or zh (default: from the locale)",
    "app.arg_verbose": "log connection details to stderr",
    "app.banner": "Connected to {host}:{port}. Type help for the list of commands.",
    "app.connect_failed": "Cannot connect to {host}:{port}: {error}",
    "app.bye": "Bye.",
    "prompt.anonymous": "> ",
    "prompt.user": "{username}> ",
    "prompt.password": "Password: ",
    "prompt.password_again": "Password (again): ",
    # --- commands --------------------------------------------------------
    "cmd.reg.usage": "reg <username>",
    "cmd.reg.help": "create an account (asks for the password twice; help reg: the rules)",
    "cmd.reg.more": (
        f"A user name has {USERNAME_RULE}.\n"
        f"A password has {PASSWORD_MIN} to {PASSWORD_MAX} characters; it is asked twice, hidden."
    ),
    "cmd.login.usage": "login <username> [password]",
    "cmd.login.help": "log in (asks for the password, hidden, if it is not given)",
    "cmd.login.more": (
        "Type login <username> alone: the password is then asked without being shown,\n"
        "and never kept in the input history (a password typed on the line is left out\n"
        "of the history too)."
    ),
    "cmd.logout.usage": "logout",
    "cmd.logout.help": "log out",
    "cmd.add.usage": "add <username>",
    "cmd.add.help": "add a friend",
    "cmd.friends.usage": "friends",
    "cmd.friends.help": "list your friends and who is online",
    "cmd.send.usage": ".send <username> <message>",
    "cmd.send.help": "send a private message to a friend (also: /msg <username> <message>)",
    "cmd.chats.usage": "chats",
    "cmd.chats.help": "your conversations, latest first, with how many messages are unread",
    "cmd.history.usage": "history [username | group n] [count]",
    "cmd.history.help": "the latest messages of a chat, marked read (count: default 20)",
    "cmd.history.more": (
        "history alice: your chat with alice; history 2: group 2 of your last groups list;\n"
        "history alone: the chat of the last message shown or sent.\n"
        f"count: 1 to {HISTORY_PAGE_MAX}."
    ),
    "cmd.search.usage": "search <text>",
    "cmd.search.help": "find messages containing the text in every chat you are in",
    "cmd.reply.usage": "reply <#n> <message>",
    "cmd.reply.help": "answer message #n (the number at the end of its line)",
    "cmd.edit.usage": "edit <#n> <new text>",
    "cmd.edit.help": "change the text of your message #n (soon after sending it)",
    "cmd.recall.usage": "recall <#n>",
    "cmd.recall.help": "retract your message #n (soon after sending it; group admins: any)",
    "cmd.recall.more": (
        "Also: retract <#n>, 撤回 <#n>. The owner and admins of a group may retract any message\n"
        "of their group at any time; everyone else only their own, shortly after sending it."
    ),
    "cmd.receipts.usage": "receipts <#n>",
    "cmd.receipts.help": "who has received and who has read your message #n",
    "cmd.newgroup.usage": "newgroup <groupname>",
    "cmd.newgroup.help": (
        f"create a group; you are its owner (at most {GROUPS_PER_CREATOR} groups)"
    ),
    "cmd.newgroup.more": (
        f"A group name has 1 to {GROUP_NAME_MAX} characters, spaces allowed;"
        " no line breaks or other control characters."
    ),
    "cmd.delgroup.usage": "delgroup <groupname>",
    "cmd.delgroup.help": "delete a group you own; its members are told",
    "cmd.addgroupuser.usage": "addgroupuser <groupname> <username>",
    "cmd.addgroupuser.help": "add a user to a group (its owner or a group admin)",
    "cmd.delgroupuser.usage": "delgroupuser <groupname> <username>",
    "cmd.delgroupuser.help": "remove a member from a group (its owner or a group admin)",
    "cmd.setgrouprole.usage": "setgrouprole <groupname> <username> admin|member",
    "cmd.setgrouprole.help": "make a member a group admin, or a plain member again (owner)",
    "cmd.groups.usage": "groups",
    "cmd.groups.help": "your groups: [n] name creator online/total (n is for sendgroup)",
    "cmd.sendgroup.usage": "sendgroup <n> <message>",
    "cmd.sendgroup.help": "send to group number n of your last groups list",
    "cmd.rooms.usage": "rooms",
    "cmd.rooms.help": "the public chat rooms: [n] name creator online/total",
    "cmd.join.usage": "join <room>",
    "cmd.join.help": "join a public room: its number in your last rooms list, or its name",
    "cmd.leave.usage": "leave <room>",
    "cmd.leave.help": "leave a room or group: its number in your last rooms list, or its name",
    "cmd.allusers.usage": "allusers [--online]",
    "cmd.allusers.help": "every user (only those online with --online): blocked? online?",
    "cmd.allgroup.usage": "allgroup",
    "cmd.allgroup.help": "every group on the server, as groups shows them",
    "cmd.adminsend.usage": "adminsend <username> <message>",
    "cmd.adminsend.help": "a system message to one user",
    "cmd.adminsendgroup.usage": "adminsendgroup <groupname> <creator> <message>",
    "cmd.adminsendgroup.help": 'a system message to a group ("quote" a name with spaces)',
    "cmd.broadcast.usage": "broadcast <message>",
    "cmd.broadcast.help": "a system message to every user",
    "cmd.blockuser.usage": "blockuser <username>",
    "cmd.blockuser.help": "block an account: logged out at once, no logins until unblocked",
    "cmd.unblockuser.usage": "unblockuser <username>",
    "cmd.unblockuser.help": "let a blocked account log in again",
    "cmd.blockgroup.usage": "blockgroup <groupname> <creator>",
    "cmd.blockgroup.help": "block a group: no messages until unblocked",
    "cmd.unblockgroup.usage": "unblockgroup <groupname> <creator>",
    "cmd.unblockgroup.help": "let a blocked group talk again",
    "cmd.help.usage": "help [command]",
    "cmd.help.help": "show this list, or more about one command",
    "cmd.quit.usage": "quit",
    "cmd.quit.help": "leave the client (also: exit, Ctrl-D, Ctrl-C on an empty line)",
    "help.title": "Commands:",
    "help.admin_title": "Administrator commands:",
    "help.line": "  {usage} {help}",
    "help.more": "    {line}",
    "help.ways_out": (
        "To leave: quit or exit, Ctrl-D, or Ctrl-C (Ctrl-C first clears a half-typed line)."
    ),
    "command.unknown": "Unknown command: {name}. Type help to see the commands.",
    "command.usage": "Usage: {usage}",
    "command.admin_only": "{name} is only for administrators.",
    # --- command results -------------------------------------------------
    "reg.ok": "Registered {username} (user id {user_id}). Log in with: login {username}",
    "reg.mismatch": "The two passwords do not match; nothing was registered.",
    "reg.cancelled": "Registration cancelled.",
    "check.username.length": (
        "A user name has {min} to {max} characters; {name} has {count}. Nothing was sent."
    ),
    "check.username.char": (
        "{char} cannot be part of a user name: use letters, digits, '_', '.' or '-'."
        " Nothing was sent."
    ),
    "check.username.scripts": (
        "{name} mixes {scripts} letters: names that mix scripts are refused, because they"
        " can look like someone else's. Nothing was sent."
    ),
    "check.username.other": "{name} cannot be a user name ({reason}). Nothing was sent.",
    "check.password.length": (
        "A password has {min} to {max} characters; this one has {count}. Nothing was sent."
    ),
    "check.group.length": (
        "A group name has at most {max} characters; this one has {count}. Nothing was sent."
    ),
    "check.group.control": (
        "A group name cannot contain line breaks, tabs or other control characters."
        " Nothing was sent."
    ),
    "check.list_separator": ", ",
    "check.list_last": " and ",
    "script.latin": "Latin",
    "script.cyrillic": "Cyrillic",
    "script.greek": "Greek",
    "script.armenian": "Armenian",
    "script.han": "Han (Chinese)",
    "script.hiragana": "Hiragana",
    "script.katakana": "Katakana",
    "script.hangul": "Hangul",
    "script.bopomofo": "Bopomofo",
    "script.arabic": "Arabic",
    "script.hebrew": "Hebrew",
    "script.thai": "Thai",
    "login.welcome_admin": "Welcome, {username}! You are logged in as an administrator.",
    "login.welcome_user": "Welcome, {username}! You are logged in.",
    "login.admin_hint": "Administrator commands are now available; type help to see them.",
    "login.cancelled": "Login cancelled.",
    "logout.ok": "Logged out.",
    "add.ok.online": "{username} is now your friend (online).",
    "add.ok.offline": "{username} is now your friend (offline).",
    "friends.title": "Friends ({count}):",
    "friends.none": "You have no friends yet. Add one with: add <username>",
    "friends.online": "  {username}  online",
    "friends.offline": "  {username}  offline",
    "friends.offline_seen": "  {username}  offline (last seen {last_seen})",
    "send.echo": "-> {to}: {message}",
    # --- history, replies, edits, retractions, receipts, search ----------
    "ref.mark": " #{ref}",
    "ref.paren": " (#{ref})",
    "ref.bad": "{text} is not a message number: write it as #12, the number at the end of a line.",
    "ref.unknown": (
        "There is no message #{ref} here: use the number at the end of a message line"
        " (messages, history, search)."
    ),
    "reply.system": "#{ref} is a system notice: there is nobody to reply to.",
    "reply.echo": "-> {to} (reply to #{reply}): {message}",
    "reply.echo_group": "-> [{group}] (reply to #{reply}): {message}",
    "edit.ok": "Edited #{ref}: {message}",
    "recall.ok": "You retracted message #{ref}.",
    "chats.title": "Conversations ({count}):",
    "chats.none": "No conversations yet.",
    "chats.line": "  {name}{unread}{last}",
    "chats.group": "[{group}]",
    "chats.system": "[System]",
    "chats.unread": "  ({count} unread)",
    "chats.last": "  {message} ({time})",
    "chats.said": "{sender}: {text}",
    "chats.edited": "{sender} (edited): {text}",
    "chats.retracted": "{sender} retracted a message",
    "chats.more": "  ... and older conversations",
    "chats.hint": "Read one with: history <username>, or history <group n> after groups",
    "history.title": "{name}: the last {count} message(s)",
    "history.none": "No messages with {name} yet.",
    "history.row": "[{when}] {sender}: {message}",
    "history.notice": "[{when}] [System]: {message}",
    "history.retracted": "[{when}] {sender} retracted a message",
    "history.status.sent": "",
    "history.status.delivered": " ✓",
    "history.status.read": " ✓✓",
    "history.more": "Older messages: history {target} <count> (up to {max}).",
    "history.no_target": "Which chat? history <username>, or history <group n> after groups.",
    "history.not_listed": "Run groups first: history <n> takes a number from the groups list.",
    "check.search.length": (
        "A search has 1 to {max} characters; this one has {count}. Nothing was sent."
    ),
    "search.title": "Messages containing {query} ({count}):",
    "search.none": "No message contains {query}.",
    "search.row": "  [{where}] {sender}: {message} ({when})",
    "search.where_direct": "with {peer}",
    "search.where_system": "System",
    "search.more": "  ... and more: search for something more precise",
    "receipt.read": "✓✓ {username} read up to #{ref}",
    "receipts.line": (
        "#{ref}: read by {read_count}{read}; received by {delivered_count}{delivered}"
    ),
    "receipts.names": " ({names})",
    # --- groups and rooms ------------------------------------------------
    "newgroup.ok": (
        "Created the group {name}; you are its owner. Add members with: "
        "addgroupuser {name} <username>"
    ),
    "delgroup.ok": "Deleted the group {name}.",
    "addgroupuser.ok": "Added {username} to {group}.",
    "delgroupuser.ok": "Removed {username} from {group}.",
    "setgrouprole.admin": "{username} is now an admin of {group}.",
    "setgrouprole.member": "{username} is now a plain member of {group}.",
    "groups.title": "Your groups ({count}):",
    "groups.none": "You are in no group yet. Create one with: newgroup <groupname>",
    "groups.line": "[{number}] {name} {creator} {online}/{total}{marks}",
    "groups.marks": "  ({marks})",
    "groups.mark_separator": ", ",
    "groups.mark.owner": "owner",
    "groups.mark.admin": "group admin",
    "groups.mark.public": "public room",
    "groups.mark.joined": "joined",
    "groups.mark.blocked": "blocked",
    "groups.hint": "Send to one with: sendgroup <n> <message>",
    "rooms.title": "Public rooms ({count}):",
    "rooms.none": "There are no public rooms.",
    "rooms.hint": "Join one with: join <n>",
    "allgroup.title": "All groups ({count}):",
    "allgroup.none": "There are no groups yet.",
    "sendgroup.echo": "-> [{group}]: {message}",
    "sendgroup.not_listed": "Run groups first: sendgroup takes a number from the groups list.",
    "sendgroup.empty": "Your last groups list was empty; create or join a group, then run groups.",
    "sendgroup.bad_number": (
        "There is no group number {number}: your last groups list goes from 1 to {count}."
    ),
    "group.unknown": "You have no group named {name}. Your groups: groups",
    "group.ambiguous": (
        "You have {count} groups named {name}; say which one as name@creator: {choices}"
    ),
    "room.unknown": "There is no public room named {name}. The rooms: rooms",
    "room.ambiguous": (
        "There are {count} public rooms named {name}; say which one as name@creator: {choices}"
    ),
    "room.bad_number": "There is no room number {number} in your last rooms list; run rooms.",
    "room.not_joined": "You are in no room or group named {name}. Your groups: groups",
    "join.ok": (
        "Joined {name} ({online}/{total} online). Run groups to get its number for sendgroup."
    ),
    "leave.ok": "Left {name}.",
    # --- administration --------------------------------------------------
    "users.title": "Users ({count}):",
    "users.title_online": "Online users ({count}):",
    "users.none": "There are no users.",
    "users.none_online": "Nobody is online.",
    "users.line": "  {username}  {presence}  {status}{admin}",
    "users.online": "online",
    "users.offline": "offline",
    "users.offline_seen": "offline (last seen {last_seen})",
    "users.active": "active",
    "users.blocked": "blocked",
    "users.admin": "  [admin]",
    "adminsend.echo": "-> {to} [System]: {message}",
    "adminsendgroup.echo": "-> [{group}] [System]: {message}",
    "broadcast.ok": "Broadcast to every user; {count} of them online got it at once.",
    "blockuser.ok": "Blocked {username}: logged out now and refused at login until unblocked.",
    "unblockuser.ok": "Unblocked {username}; they can log in again.",
    "blockgroup.ok": "Blocked the group {name} (creator {creator}): no messages until unblocked.",
    "unblockgroup.ok": "Unblocked the group {name} (creator {creator}).",
    # --- errors ----------------------------------------------------------
    "error.request": "Failed: {message} ({code})",
    "error.request_detail": "Failed: {message}: {detail} ({code})",
    "error.connection_lost": (
        "The connection to the server was lost before it answered; try again in a moment."
    ),
    "error.not_connected": "Not connected to the server; reconnecting, try again in a moment.",
    "error.timeout": "The server did not answer in time; try again.",
    "error.other": "Error: {message}",
    # --- events ----------------------------------------------------------
    "event.kicked.logged_in_elsewhere": (
        "You have been logged out: your account just logged in somewhere else."
    ),
    "event.kicked.blocked": (
        "Your account has been blocked by an administrator: you are logged out and cannot "
        "log in until an administrator unblocks it."
    ),
    "event.kicked.slow_consumer": (
        "The server disconnected you because messages piled up faster than they could be "
        "delivered. Nothing is lost: they wait for your next login."
    ),
    "event.kicked.shutdown": "The server is shutting down.",
    "event.kicked.other": "The server disconnected you ({reason}).",
    "event.error": "The server closed the connection: {message} ({code})",
    "event.session.admin": (
        "You are now a server admin: the administrator commands are unlocked (type help)."
    ),
    "event.session.user": (
        "You are no longer a server admin: the administrator commands are locked."
    ),
    "message.direct": "{sender} whispers to you: {message} ({time})",
    "message.system": "[System]: {message}",
    "message.group": "[{group}] {sender}: {message} ({time})",
    "message.group_system": "[System] [{group}] administrator {sender}: {message} ({time})",
    "message.group_system_anonymous": "[System] [{group}]: {message} ({time})",
    "message.admin": "[System] administrator {sender}: {message} ({time})",
    "message.admin_broadcast": (
        "[System] broadcast from administrator {sender}: {message} ({time})"
    ),
    "message.replayed": "[offline] {line}",
    "message.ref": "{line} #{ref}",
    "message.edited_mark": "{line} (edited)",
    "message.quote": "[re {sender}{ref}: {text}] ",
    "message.quote_short": "[re {sender}{ref}] ",
    "message.where_group": "[{group}] ",
    "message.edit": "{where}{sender} (edited){ref}: {message} ({time})",
    "message.retract": "{where}{sender} retracted a message{ref}",
    "message.retract_other": "{where}{sender} retracted a message of {author}{ref}",
    "notice.friend_added": "{username} added you as a friend",
    "notice.group_invited": "{by} added you to the group {group_name}",
    "notice.group_removed": "{by} removed you from the group {group_name}",
    "notice.group_deleted": "{by} deleted the group {group_name}",
    "notice.group_blocked": (
        "The group {group_name} has been blocked by an administrator: "
        "no messages until it is unblocked"
    ),
    "notice.group_unblocked": "The group {group_name} has been unblocked by an administrator",
    "event.presence.online": "{username} is online.",
    "event.presence.offline": "{username} is offline.",
    "event.sync_done": "{count} offline message(s) delivered.",
    "event.disconnected.reconnecting": "Connection to the server lost ({reason}); reconnecting...",
    "event.disconnected.final": (
        "Disconnected from the server ({reason}). Your next command connects again."
    ),
    "event.disconnected.closed": "Disconnected.",
    "event.reconnected.relogged": "Reconnected; logged in again as {username}.",
    "event.reconnected.plain": "Reconnected to the server.",
    "event.reconnected.relogin_failed": (
        "Reconnected, but logging in again failed: {message} ({code})."
    ),
    "event.unknown": "[{type}] {payload}",
}
