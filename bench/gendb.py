"""``python -m bench gendb``: a database holding a team's history, for the read benchmark.

Builds, on SQLite or PostgreSQL (``--database-url``), what a team of
``--users`` (1,000) people would have said over a year: ``--messages``
(1,000,000) rows in ``messages``, in direct chats and ``--groups`` (50)
groups, with correct per-conversation seqs, cursors and search index.

1. **The server makes the schema.** A real server (``p2sp.launcher``) is
   started once on the empty database, so the migrations run and the server
   adds what it adds on its first start (the ``system`` account, the public
   room), and stopped. The database must hold no message yet.
2. **Plan** (pure Python, deterministic for a ``--seed``):

   - users ``user0001`` ... ``user1000``, one password for all
     (``PASSWORD``), hashed once with a cheap scrypt cost (n=1024) and the
     hash reused; 35 % of them write mostly Chinese, the rest English;
   - ``user0001`` (the *hub*) has a direct chat with every other user and is
     in every group; the others have 5-40 direct partners each, mostly in
     their own team of 20; every direct pair is a friendship;
   - groups of sizes from 1,000 down to about 30 members (about ``1000 /
     rank^0.9``), a fifth of them public; 20 % of the members of a private group joined late (their
     ``joined_seq`` is the group's seq when they joined, and they speak only
     after it);
   - messages shared out over the conversations with heavy-tailed weights
     (a few chats with many thousands, most with a few dozen), 45 % in
     groups; each conversation talks in bursts (sessions of a few messages
     seconds apart) spread over its active months, all in the last 365 days;
     ids follow time across conversations, as the server assigns them;
   - the text: words drawn from a fixed vocabulary with a Zipf distribution
     (``ENGLISH`` real words first, then invented words for the long tail;
     ``CHINESE`` phrases), with links, ticket numbers and times now and then;
     the ``MARKERS`` (rare words) are put into exactly the number of
     messages given for each, for searches with few hits;
   - 3 % of messages reply to a recent one (``parent_id``), 1 % are edited
     (an ``edit`` event follows as the conversation's next message, the old
     text kept in ``message_versions``), 0.3 % retracted (a ``retract``
     event, text erased), 32-hex ``client_msg_id`` on what a client sent,
     as the SDK makes them;
   - cursors: every member's ``delivered_seq`` is the conversation's
     ``last_seq`` (logging in replays nothing), ``read_seq`` lags by up to
     30 messages in 15 % of memberships (unread counts).

3. **Bulk load.** SQLite: one transaction on a plain ``sqlite3``
   connection, ``executemany``; the search index's insert trigger is dropped
   for the load and recreated from its own stored SQL, and the FTS5 table is
   filled once at the end with the statement migration 0003 fills it with
   (the rows the trigger would have indexed, in one pass, far faster). No
   ``ANALYZE``: the server never runs one, so a real database has no
   statistics either. PostgreSQL: ``COPY`` (asyncpg); the trigram GIN index
   and the two unique constraints of ``messages`` are dropped for the load
   and recreated from their stored definitions, foreign-key triggers are off
   for the load (``session_replication_role``), the sequences are moved past
   the ids used, then ``VACUUM ANALYZE`` (what autovacuum would have done on
   a live database).

A JSON manifest (``--manifest``; default ``FILE.manifest.json`` beside a
SQLite file) records the plan's figures, the hub, the password and how many
messages hold each vocabulary word and marker, for ``python -m bench read``.

    .venv/bin/python -m bench gendb --database-url sqlite+aiosqlite:////tmp/p2sp-1m.db
    .venv/bin/python -m bench gendb --manifest /tmp/p2sp-1m-pg.json \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python bench/gendb.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2sp.common.usernames import check_new_username
from p2sp.launcher import ServerProcess
from p2sp.server.auth import ScryptCost, hash_password_sync
from p2sp.server.db.models import direct_pair_key

#: Every generated user's password.
PASSWORD = "bench-password-1"
#: scrypt cost of the one hash every user shares (logins check it at this cost).
SCRYPT = ScryptCost(n=1024)
HUB = "user0001"
DAY_MS = 86_400_000
#: How far back the history goes.
SPAN_DAYS = 365
TEAM = 20
CHINESE_USERS = 0.35
GROUP_SHARE = 0.45
LATE_JOINERS = 0.20
REPLY_RATE = 0.03
EDIT_RATE = 0.01
RETRACT_RATE = 0.003
UNREAD_RATE = 0.15
CHUNK = 50_000


def _words(text: str) -> list[str]:
    return text.split()


#: English words people write in a team chat, most frequent first (Zipf rank order).
ENGLISH = _words("""
the i to you a and it is that we for on in this of be can have do not it's
will just but with are so what i'm if at ok yes no me my was from get now
there think about how your all can't know need up let when like out one
they should any see also then more done thanks here time going good would
don't today work check some build test tomorrow meeting please fix could
make sure back right still again look team new merge release branch deploy
issue review change code server client update before after we're morning
afternoon sorry first last because thing things maybe yeah sounds great lunch
call quick question problem bug data page user users message messages error
logs log file files why which who where only been did has had them their our
into over other than very much well take way really same week next few
something nothing anything everything people doc docs link email meet sync
plan status report done yet soon later hour hours minutes ticket tickets
priority customer product design feature features api database query index
latency cache config version install staging production prod rollback
monitor alert dashboard metrics cpu memory disk network timeout retry
restart crash fixed broken works working tested pull request commit push
main master tag hotfix patch schedule sprint standup retro demo slides
budget invoice contract office remote travel holiday weekend friday monday
tuesday wednesday thursday saturday sunday coffee dinner birthday party
happy welcome congrats awesome nice cool agree idea ideas option options
proposal draft final notes summary agenda minutes action items owner
deadline estimate scope risk blocker blocked unblocked waiting pending
approved rejected feedback comments comment reply thread channel group
screen share recording calendar invite room link zoom video audio mic
script job queue worker workers pipeline runner docker image container
cluster node nodes service services endpoint endpoints request requests
response responses payload schema migration migrations table tables column
columns row rows field fields value values key keys token tokens session
sessions login logout password account accounts permission permissions
admin role roles access policy security audit backup restore storage
bucket upload download attachment attachments search results filter sort
export import format json yaml csv pdf spreadsheet chart graph number
numbers count total average median percent percentile budget revenue cost
costs price pricing plan plans tier tiers trial license renewal vendor
partner partners support hiring interview candidate onboarding training
""")

#: Chinese phrases, most frequent first.
CHINESE = _words("""
好的 我们 没问题 收到 谢谢 今天 明天 可以 一下 这个 那个 已经 还是 看看
什么 现在 开会 下午 上午 问题 好像 应该 大家 辛苦了 周报 需求 上线 测试
发布 代码 评审 合并 分支 服务器 客户端 数据库 接口 文档 进度 计划 会议室
稍等 马上 不好意思 麻烦 帮忙 确认 一起 讨论 方案 设计 产品 用户 反馈
线上 故障 回滚 监控 告警 日志 报错 修复 复现 排查 原因 定位 优化 性能
延迟 缓存 配置 版本 环境 部署 重启 超时 重试 内存 磁盘 网络 权限 账号
密码 登录 注册 搜索 消息 历史 群聊 私聊 已读 未读 撤回 编辑 回复 附件
图片 文件 截图 链接 邮件 日程 请假 出差 周末 加班 午饭 晚饭 咖啡 生日
快乐 欢迎 恭喜 厉害 不错 同意 想法 建议 草稿 总结 议程 负责人 截止日期
估计 风险 阻塞 等待 批准 驳回 评论 频道 分享 录屏 日历 邀请 视频 麦克风
脚本 任务 队列 流水线 容器 集群 节点 服务 请求 响应 迁移 字段 令牌 会话
备份 恢复 存储 上传 下载 导出 导入 表格 图表 数字 平均 百分比 预算 成本
价格 续费 供应商 合作 招聘 面试 候选人 入职 培训 季度目标 复盘会议
""")

#: Rare words, each put into exactly this many messages: searches with few hits.
MARKERS = {
    "kumquatfjord": 3,
    "xylographic": 10,
    "zanzibarite": 30,
    "quetzalbloom": 100,
    "marmotdawn": 300,
    "琥珀色猫头鹰": 10,
    "青花瓷灯塔": 100,
}

_SYLLABLES = _words(
    "ka ri no ve ta lo mi san dor el bru fen gal hox ist jun kel mor nep "
    "osk pra quil rot sev tur ulm vax wen yor zet"
)
TAIL_WORDS = 3000
ZIPF_S = 1.07
GROUP_TOPICS = _words(
    "all-hands eng backend frontend mobile infra sre data ml design product "
    "sales support ops security qa release oncall hiring finance legal "
    "marketing 产品讨论 技术分享 运维值班 前端 后端 测试组 数据组 午餐 读书会"
)


def invented_words(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct made-up words of 2-4 syllables for the vocabulary's long tail."""
    taken = set(ENGLISH) | set(MARKERS)
    out: list[str] = []
    while len(out) < n:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in taken and not any(m in word or word in m for m in MARKERS):
            taken.add(word)
            out.append(word)
    return out


def zipf_cum_weights(n: int, s: float = ZIPF_S) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**s) for rank in range(1, n + 1)))


# --- the plan -----------------------------------------------------------------------------


@dataclass
class Conv:
    id: int
    kind: str  # direct | group
    members: list[int]  # user ids; a direct chat's two, a group's with the owner first
    count: int = 0  # messages planned
    name: str | None = None
    creator: int | None = None
    is_public: bool = False
    pair_key: str | None = None
    #: per member: the seq they joined at (0: from the start)
    joined: dict[int, int] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)
    #: per-member sender weights (cumulative), groups only
    cum: list[float] = field(default_factory=list)
    last_seq: int = 0
    last_activity: int | None = None


@dataclass
class Plan:
    seed: int
    now_ms: int
    user_ids: list[int]  # index i -> id of user{i+1:04d}
    usernames: list[str]
    chinese: list[bool]  # per user index
    pairs: list[tuple[int, int]]  # direct pairs (user ids, low first)
    convs: list[Conv]
    total_messages: int
    first_message_id: int
    first_member_id: int
    first_friend_id: int
    first_version_id: int

    @property
    def hub_id(self) -> int:
        return self.user_ids[0]


def plan(
    *,
    users: int,
    groups: int,
    messages: int,
    seed: int,
    ids: dict[str, int],
    now_ms: int,
) -> Plan:
    """Who exists, who talks to whom and how much (no text yet)."""
    rng = random.Random(seed)
    first_user = ids["users"] + 1
    user_ids = [first_user + i for i in range(users)]
    usernames = [f"user{i + 1:04d}" for i in range(users)]
    chinese = [rng.random() < CHINESE_USERS for _ in range(users)]

    pairs: set[tuple[int, int]] = set()
    for i in range(1, users):
        pairs.add((user_ids[0], user_ids[i]))
    for i in range(1, users):
        team = (i // TEAM) * TEAM
        for _ in range(rng.randint(5, 40) // 2):  # each pair counts for both ends
            if rng.random() < 0.7:
                j = rng.randrange(max(1, team), min(users, team + TEAM))
            else:
                j = rng.randrange(1, users)
            if j != i:
                a, b = sorted((user_ids[i], user_ids[j]))
                pairs.add((a, b))
    pair_list = sorted(pairs)

    next_conv = ids["conversations"] + 1
    convs: list[Conv] = []
    for a, b in pair_list:
        convs.append(Conv(next_conv, "direct", [a, b], pair_key=direct_pair_key(a, b)))
        next_conv += 1
    for g in range(groups):
        size = max(3, min(users, round(users / (g + 1) ** 0.9 * rng.uniform(0.85, 1.15))))
        others = rng.sample(user_ids[1:], size - 1)
        owner = user_ids[0] if g % 3 == 0 else others[0]
        members = [owner] + [u for u in [user_ids[0], *others] if u != owner]
        topic = GROUP_TOPICS[g % len(GROUP_TOPICS)]
        conv = Conv(
            next_conv,
            "group",
            members,
            name=f"{topic}-{g + 1}",
            creator=owner,
            is_public=rng.random() < 0.2,
        )
        conv.roles = {u: "member" for u in members}
        conv.roles[owner] = "owner"
        for u in members[1 : 1 + max(1, size // 50)]:
            conv.roles[u] = "admin"
        # Who talks in a group: Zipf over its members in a random order.
        order = members[:]
        rng.shuffle(order)
        conv.members = order
        conv.cum = zipf_cum_weights(len(order), 1.0)
        convs.append(conv)
        next_conv += 1

    # Share the messages out: heavy-tailed weights, the hub's chats busier.
    directs = [c for c in convs if c.kind == "direct"]
    grps = [c for c in convs if c.kind == "group"]
    n_group = round(messages * GROUP_SHARE) if grps else 0
    hub = user_ids[0]
    _share(
        rng,
        directs,
        messages - n_group,
        [rng.lognormvariate(0, 1.5) * (2.0 if hub in c.members else 1.0) for c in directs],
        minimum=1,
    )
    _share(
        rng,
        grps,
        n_group,
        [len(c.members) ** 0.6 * rng.lognormvariate(0, 0.7) for c in grps],
        minimum=1,
    )
    for c in grps:
        if not c.is_public:
            for u in c.members:
                if u != c.creator and u != hub and rng.random() < LATE_JOINERS:
                    c.joined[u] = rng.randrange(0, max(1, c.count))
    return Plan(
        seed=seed,
        now_ms=now_ms,
        user_ids=user_ids,
        usernames=usernames,
        chinese=chinese,
        pairs=pair_list,
        convs=convs,
        total_messages=messages,
        first_message_id=ids["messages"] + 1,
        first_member_id=ids["conversation_members"] + 1,
        first_friend_id=ids["user_friends"] + 1,
        first_version_id=ids["message_versions"] + 1,
    )


def _share(
    rng: random.Random, convs: list[Conv], total: int, weights: list[float], minimum: int
) -> None:
    """Integer counts in proportion to ``weights``, each >= ``minimum``, summing to ``total``."""
    if not convs:
        return
    spare = total - minimum * len(convs)
    if spare < 0:
        raise SystemExit(f"{total} messages are too few for {len(convs)} conversations")
    cap = 0.15 * sum(weights)  # no conversation above ~15 % of its kind (a rare outlier)
    weights = [min(w, cap) for w in weights]
    scale = spare / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    rest = spare - sum(counts)
    by_fraction = sorted(range(len(convs)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_fraction[:rest]:
        counts[i] += 1
    for c, n in zip(convs, counts, strict=True):
        c.count = n + minimum


# --- time ---------------------------------------------------------------------------------


def timestamps(rng: random.Random, n: int, now_ms: int) -> list[int]:
    """``n`` increasing send times (ms): bursts of messages a few seconds apart,
    the bursts spread over the conversation's active months, ending recently."""
    end = now_ms - int(rng.expovariate(1 / 20) * DAY_MS)  # last active ~20 days ago on average
    end = max(end, now_ms - SPAN_DAYS * DAY_MS + DAY_MS)
    span = min(end - (now_ms - SPAN_DAYS * DAY_MS), int(rng.uniform(30, SPAN_DAYS) * DAY_MS))
    start = end - span
    out: list[int] = []
    while len(out) < n:
        burst = min(n - len(out), 1 + int(rng.expovariate(1 / 7)))
        t = rng.randint(start, end)
        for _ in range(burst):
            out.append(t)
            t += 1000 + int(rng.expovariate(1 / 25_000))
    out.sort()
    for i in range(1, n):  # strictly increasing within a conversation
        if out[i] <= out[i - 1]:
            out[i] = out[i - 1] + 1
    return out


# --- text ---------------------------------------------------------------------------------


class Vocabulary:
    """Words drawn in bulk (``random.choices`` with cumulative Zipf weights)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.english = ENGLISH + invented_words(rng, TAIL_WORDS)
        self.chinese = CHINESE
        self._en_cum = zipf_cum_weights(len(self.english))
        self._zh_cum = zipf_cum_weights(len(self.chinese))
        self._en: Iterator[str] = iter(())
        self._zh: Iterator[str] = iter(())

    def en(self) -> str:
        try:
            return next(self._en)
        except StopIteration:
            self._en = iter(self.rng.choices(self.english, cum_weights=self._en_cum, k=200_000))
            return next(self._en)

    def zh(self) -> str:
        try:
            return next(self._zh)
        except StopIteration:
            self._zh = iter(self.rng.choices(self.chinese, cum_weights=self._zh_cum, k=100_000))
            return next(self._zh)


def compose(rng: random.Random, vocab: Vocabulary, chinese: bool, words: list[str]) -> str:
    """One message's text; the words drawn are appended to ``words`` (for the counts)."""
    if chinese:
        n = max(1, min(16, int(rng.lognormvariate(1.3, 0.6))))
        parts = []
        for k in range(n):
            if rng.random() < 0.12:
                w = vocab.en()
                parts.append(f" {w} ")
            else:
                w = vocab.zh()
                parts.append(w)
                if k < n - 1 and rng.random() < 0.2:
                    parts.append("，")
            words.append(w)
        text = "".join(parts).strip()
        end = rng.random()
        if end < 0.15:
            text += "？"
        elif end < 0.25:
            text += "！"
        elif end < 0.35:
            text += "。"
    else:
        n = max(1, min(60, int(rng.lognormvariate(2.0, 0.7))))
        out = []
        for _ in range(n):
            w = vocab.zh() if rng.random() < 0.06 else vocab.en()
            out.append(w)
            words.append(w)
        if rng.random() < 0.3:
            out[0] = out[0].capitalize()
        text = " ".join(out)
        end = rng.random()
        if end < 0.12:
            text += "?"
        elif end < 0.18:
            text += "!"
        elif end < 0.3:
            text += "."
    extra = rng.random()
    if extra < 0.02:
        text += f" https://git.example.com/team/repo/pull/{rng.randint(100, 9999)}"
    elif extra < 0.05:
        text += f" #{rng.randint(1000, 29999)}"
    elif extra < 0.07:
        text += f" {rng.randint(1, 12)}:{rng.choice(('00', '15', '30', '45'))}"
    return text


# --- the messages -------------------------------------------------------------------------

# Column order of the generated rows (both databases).
MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "seq",
    "sender_id",
    "client_msg_id",
    "type",
    "content",
    "parent_id",
    "created_at",
    "edited_at",
    "retracted",
    "target_id",
)
VERSION_COLUMNS = ("id", "message_id", "event_id", "text", "created_at")


@dataclass
class Counts:
    words: Counter[str] = field(default_factory=Counter)  # messages holding each word
    markers: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    replies: int = 0
    retracted: int = 0
    edited: int = 0
    chars: int = 0


def generate_messages(
    p: Plan, counts: Counts
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Chunks of (message rows, message_versions rows), in id order.

    Also sets every conversation's ``last_seq`` and ``last_activity``.
    """
    rng = random.Random(p.seed * 7919 + 1)
    vocab = Vocabulary(random.Random(p.seed * 104_729 + 2))
    t0 = time.monotonic()
    times = [timestamps(rng, c.count, p.now_ms) for c in p.convs]
    slots = sorted(
        (t, ci, k) for ci, ts in enumerate(times) for k, t in enumerate(ts)
    )  # every message: (time, conversation, its index there)
    del times
    print(f"  timeline: {len(slots):,} send times sorted in {time.monotonic() - t0:.1f} s")
    total = len(slots)
    marker_at: dict[int, list[str]] = {}
    for word, n in MARKERS.items():
        for i in rng.sample(range(total), min(n, total)):
            marker_at.setdefault(i, []).append(word)
    chinese = dict(zip(p.user_ids, p.chinese, strict=True))
    # per conversation: the next slot's planned event (kind, target id, sender, old text)
    planned: dict[int, tuple[str, int, int, str]] = {}
    recent: dict[int, list[tuple[int, int]]] = {}  # conversation -> [(id, sender)] (last 20)
    last_sender: dict[int, int] = {}
    seq_of = [0] * len(p.convs)
    count_of = [c.count for c in p.convs]
    next_version = p.first_version_id
    rows: list[tuple[Any, ...]] = []
    versions: list[tuple[Any, ...]] = []
    carry: list[str] = []  # markers whose slot became an event: the next text takes them
    words: list[str] = []
    for i, (t, ci, k) in enumerate(slots):
        conv = p.convs[ci]
        mid = p.first_message_id + i
        seq_of[ci] += 1
        seq = seq_of[ci]
        conv.last_seq = seq
        conv.last_activity = t
        markers = marker_at.get(i, [])
        event = planned.pop(ci, None)
        if event is not None:
            kind, target, sender, new_text = event
            rows.append(
                (mid, conv.id, seq, sender, None, kind, new_text, None, t, None, False, target)
            )
            counts.types[kind] += 1
            carry.extend(markers)
            continue
        # the sender
        if conv.kind == "direct":
            a, b = conv.members
            prev = last_sender.get(ci)
            if prev is None:
                sender = rng.choice((a, b))
            else:
                sender = prev if rng.random() < 0.55 else (b if prev == a else a)
        else:
            sender = conv.members[bisect.bisect(conv.cum, rng.random() * conv.cum[-1])]
            if conv.joined.get(sender, 0) >= seq:  # had not joined yet
                sender = conv.creator if conv.creator is not None else conv.members[0]
        last_sender[ci] = sender
        words.clear()
        text = compose(rng, vocab, chinese[sender], words)
        if carry:
            markers = markers + carry
            carry = []
        for m in markers:
            text = f"{text} {m}" if rng.random() < 0.5 else f"{m} {text}"
            counts.markers[m] += 1
        parent = None
        near = recent.setdefault(ci, [])
        if near and rng.random() < REPLY_RATE:
            parent = rng.choice(near)[0]
            counts.replies += 1
        retracted = False
        content = text
        has_next = k + 1 < count_of[ci]
        roll = rng.random()
        if has_next and roll < EDIT_RATE:
            extra: list[str] = []
            new_text = compose(rng, vocab, chinese[sender], extra)
            planned[ci] = ("edit", mid, sender, new_text)
            versions.append((next_version, mid, None, text, t))  # event_id: once it has one
            next_version += 1
            content = new_text
            counts.edited += 1
            words = extra  # the text shown (and indexed) is the edited one
        elif has_next and roll < EDIT_RATE + RETRACT_RATE:
            planned[ci] = ("retract", mid, sender, "")
            content, retracted = "", True
            counts.retracted += 1
            words = []
        if not retracted:
            for w in set(words):
                counts.words[w] += 1
            counts.chars += len(content)
        client_msg_id = f"{rng.getrandbits(128):032x}"
        rows.append(
            (
                mid,
                conv.id,
                seq,
                sender,
                client_msg_id,
                "text",
                content,
                parent,
                t,
                None,
                retracted,
                None,
            )
        )
        counts.types["text"] += 1
        near.append((mid, sender))
        if len(near) > 20:
            del near[0]
        if len(rows) >= CHUNK:
            yield rows, versions
            rows, versions = [], []
    if rows or versions:
        yield rows, versions


def attach_edit_events(
    chunks: Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]],
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[int, int, int]]]]:
    """Per chunk: rows, versions and the (edited_at, event_id, target) of every
    edit event in it, for the targets' ``edited_at`` and the versions' ``event_id``."""
    for rows, versions in chunks:
        edits = [(r[8], r[0], r[11]) for r in rows if r[5] == "edit"]
        yield rows, versions, edits


def progress(n: int, rate: float) -> None:
    """Messages written so far: one line rewritten on a terminal, every 250,000 in a log."""
    if sys.stdout.isatty():
        print(f"\r  messages: {n:,} ({rate:,.0f}/s)", end="", flush=True)
    elif n % 250_000 == 0 or n % CHUNK:  # every 250,000, and the last chunk
        print(f"  messages: {n:,} ({rate:,.0f}/s)", flush=True)


# --- what is in the database already ---------------------------------------------------------

ID_TABLES = (
    "users",
    "conversations",
    "conversation_members",
    "user_friends",
    "messages",
    "message_versions",
)


def make_schema(url: str, workdir: Path) -> None:
    """Start a real server on the database once (migrations, first-start rows), then stop it."""
    server = ServerProcess(url, workdir, {"P2SP_LOG_LEVEL": "INFO"}, name="gendb-server")
    t = time.monotonic()
    with server:
        pass
    print(
        f"  schema: server started and stopped in {time.monotonic() - t:.1f} s "
        f"(log {server.log_path})"
    )


# --- SQLite -------------------------------------------------------------------------------


#: How migration 0003 fills the search index from the messages already stored
#: (the types the insert trigger indexes; a retracted message has no text).
FTS_FILL = (
    "INSERT INTO messages_fts (rowid, content) SELECT id, content FROM messages "
    "WHERE type IN ('text', 'image', 'file', 'system') AND retracted = 0"
)


def sqlite_path(url: str) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(url).database)


def load_sqlite(url: str, build: Callable[[dict[str, int]], Plan], counts: Counts) -> Plan:
    conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
    cur = conn.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.execute("PRAGMA cache_size=-1048576")  # 1 GiB for the load
    cur.execute("PRAGMA temp_store=MEMORY")
    ids = {t: cur.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0] for t in ID_TABLES}
    if ids["messages"]:
        raise SystemExit("the database already holds messages: gendb wants a new one")
    p = build(ids)
    trigger = cur.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'messages_fts_insert'"
    ).fetchone()
    if trigger is None:
        raise SystemExit("no messages_fts_insert trigger: is the schema at migration 0003?")
    t0 = time.monotonic()
    cur.execute("BEGIN IMMEDIATE")
    cur.execute("DROP TRIGGER messages_fts_insert")
    write_people_sqlite(cur, p)
    n = 0
    pending: dict[int, tuple[int, int]] = {}  # edit target -> (edited_at, event id)
    for rows, versions, edits in attach_edit_events(generate_messages(p, counts)):
        cur.executemany(
            f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(MESSAGE_COLUMNS))})",
            rows,
        )
        for at, event_id, target in edits:
            pending[target] = (at, event_id)
        cur.executemany(
            f"INSERT INTO message_versions ({', '.join(VERSION_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
            versions,
        )
        n += len(rows)
        rate = n / max(1e-9, time.monotonic() - t0)
        progress(n, rate)
    if sys.stdout.isatty():
        print()
    cur.executemany(
        "UPDATE messages SET edited_at = ? WHERE id = ?",
        [(at, target) for target, (at, _) in pending.items()],
    )
    cur.executemany(
        "UPDATE message_versions SET event_id = ? WHERE message_id = ?",
        [(event_id, target) for target, (_, event_id) in pending.items()],
    )
    write_conversation_state_sqlite(cur, p)
    t1 = time.monotonic()
    cur.execute(FTS_FILL)
    cur.execute(trigger[0])
    print(f"  search index filled in {time.monotonic() - t1:.1f} s")
    cur.execute("COMMIT")
    t2 = time.monotonic()
    cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(
        f"  committed and checkpointed in {time.monotonic() - t2:.1f} s; "
        f"load {time.monotonic() - t0:.1f} s in all"
    )
    return p


def people_rows(p: Plan) -> dict[str, list[tuple[Any, ...]]]:
    hashed = hash_password_sync(PASSWORD, SCRYPT)
    users = []
    for uid, name in zip(p.user_ids, p.usernames, strict=True):
        shown, key, skel = check_new_username(name)
        users.append((uid, shown, key, skel, hashed))
    friends = []
    fid = p.first_friend_id
    for a, b in p.pairs:
        friends.append((fid, a, b))
        friends.append((fid + 1, b, a))
        fid += 2
    return {"users": users, "user_friends": friends}


def conversation_rows(p: Plan) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """conversations and conversation_members rows, after the messages (last_seq known)."""
    rng = random.Random(p.seed * 31 + 3)
    convs = []
    members = []
    mid = p.first_member_id
    for c in p.convs:
        convs.append(
            (
                c.id,
                c.kind,
                c.name,
                c.creator,
                c.is_public,
                max(50, len(c.members)) if c.kind == "group" else 50,
                c.pair_key,
                c.last_seq,
                c.last_activity,
            )
        )
        for u in c.members:
            joined = c.joined.get(u, 0)
            read = c.last_seq
            if c.last_seq > joined and rng.random() < UNREAD_RATE:
                read = max(joined, c.last_seq - rng.randint(1, 30))
            role = c.roles.get(u, "member")
            members.append((mid, c.id, u, role, c.last_seq, read, joined))
            mid += 1
    return convs, members


CONVERSATION_COLUMNS = (
    "id",
    "kind",
    "name",
    "creator_user_id",
    "is_public",
    "max_members",
    "pair_key",
    "last_seq",
    "last_activity",
)
MEMBER_COLUMNS = (
    "id",
    "conversation_id",
    "user_id",
    "role",
    "delivered_seq",
    "read_seq",
    "joined_seq",
)


def write_people_sqlite(cur: sqlite3.Cursor, p: Plan) -> None:
    rows = people_rows(p)
    cur.executemany(
        "INSERT INTO users (id, username, username_key, username_skeleton, password_hash) "
        "VALUES (?, ?, ?, ?, ?)",
        rows["users"],
    )
    cur.executemany(
        "INSERT INTO user_friends (id, user_id_a, user_id_b) VALUES (?, ?, ?)", rows["user_friends"]
    )
    # Conversations first with last_seq 0 (messages refer to them); their
    # state is set once the messages are written.
    convs, _ = conversation_rows(p)
    cur.executemany(
        f"INSERT INTO conversations ({', '.join(CONVERSATION_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(CONVERSATION_COLUMNS))})",
        [(*r[:7], 0, None) for r in convs],
    )


def write_conversation_state_sqlite(cur: sqlite3.Cursor, p: Plan) -> None:
    convs, members = conversation_rows(p)
    cur.executemany(
        "UPDATE conversations SET last_seq = ?, last_activity = ? WHERE id = ?",
        [(r[7], r[8], r[0]) for r in convs],
    )
    cur.executemany(
        f"INSERT INTO conversation_members ({', '.join(MEMBER_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(MEMBER_COLUMNS))})",
        members,
    )


# --- PostgreSQL ---------------------------------------------------------------------------


def asyncpg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


#: Dropped for the load and recreated from their stored definitions.
PG_MESSAGE_CONSTRAINTS = ("uq_messages_conversation_id_seq", "uq_messages_sender_id_client_msg_id")
PG_MESSAGE_INDEXES = ("ix_messages_content_trgm",)


async def load_postgres(url: str, build: Callable[[dict[str, int]], Plan], counts: Counts) -> Plan:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        ids = {t: await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {t}") for t in ID_TABLES}
        if ids["messages"]:
            raise SystemExit("the database already holds messages: gendb wants a new one")
        p = build(ids)
        t0 = time.monotonic()
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
            constraints = {
                name: await conn.fetchval(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1", name
                )
                for name in PG_MESSAGE_CONSTRAINTS
            }
            indexes = {
                name: await conn.fetchval(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = $1", name
                )
                for name in PG_MESSAGE_INDEXES
            }
            missing = [k for k, v in {**constraints, **indexes}.items() if v is None]
            if missing:
                raise SystemExit(f"not in the schema: {missing} (is it at migration 0003?)")
            for name in constraints:
                await conn.execute(f"ALTER TABLE messages DROP CONSTRAINT {name}")
            for name in indexes:
                await conn.execute(f"DROP INDEX {name}")
            people = people_rows(p)
            await conn.copy_records_to_table(
                "users",
                records=people["users"],
                columns=["id", "username", "username_key", "username_skeleton", "password_hash"],
            )
            await conn.copy_records_to_table(
                "user_friends",
                records=people["user_friends"],
                columns=["id", "user_id_a", "user_id_b"],
            )
            n = 0
            pending: dict[int, tuple[int, int]] = {}
            all_versions: list[tuple[Any, ...]] = []
            for rows, versions, edits in attach_edit_events(generate_messages(p, counts)):
                await conn.copy_records_to_table(
                    "messages", records=rows, columns=list(MESSAGE_COLUMNS)
                )
                for at, event_id, target in edits:
                    pending[target] = (at, event_id)
                all_versions.extend(versions)
                n += len(rows)
                rate = n / max(1e-9, time.monotonic() - t0)
                progress(n, rate)
            if sys.stdout.isatty():
                print()
            all_versions = [
                (v[0], v[1], pending.get(v[1], (None, None))[1], v[3], v[4]) for v in all_versions
            ]
            await conn.copy_records_to_table(
                "message_versions", records=all_versions, columns=list(VERSION_COLUMNS)
            )
            await conn.executemany(
                "UPDATE messages SET edited_at = $1 WHERE id = $2",
                [(at, target) for target, (at, _) in pending.items()],
            )
            convs, members = conversation_rows(p)
            await conn.copy_records_to_table(
                "conversations", records=convs, columns=list(CONVERSATION_COLUMNS)
            )
            await conn.copy_records_to_table(
                "conversation_members", records=members, columns=list(MEMBER_COLUMNS)
            )
            t1 = time.monotonic()
            for name, definition in constraints.items():
                await conn.execute(f"ALTER TABLE messages ADD CONSTRAINT {name} {definition}")
            for definition in indexes.values():
                await conn.execute(definition)
            print(f"  indexes rebuilt in {time.monotonic() - t1:.1f} s")
            for table in ID_TABLES:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
        t2 = time.monotonic()
        await conn.execute("VACUUM ANALYZE")
        print(
            f"  VACUUM ANALYZE {time.monotonic() - t2:.1f} s; "
            f"load {time.monotonic() - t0:.1f} s in all"
        )
    finally:
        await conn.close()
    return p


# --- the manifest -------------------------------------------------------------------------


def manifest(
    p: Plan, counts: Counts, url: str, seconds: float, args: dict[str, Any]
) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    hub_convs = sum(1 for c in p.convs if p.hub_id in c.members)
    sizes = sorted((c.count for c in p.convs), reverse=True)
    group_sizes = sorted((len(c.members) for c in p.convs if c.kind == "group"), reverse=True)
    vocab_counts = counts.words.most_common()
    return {
        "database": make_url(url).render_as_string(hide_password=True),
        "seed": p.seed,
        "settings": args,
        "generated_in_s": round(seconds, 1),
        "now_ms": p.now_ms,
        "password": PASSWORD,
        "scrypt_n": SCRYPT.n,
        "hub": {"username": HUB, "user_id": p.hub_id, "conversations": hub_convs},
        "users": {"count": len(p.user_ids), "first_id": p.user_ids[0], "chinese": sum(p.chinese)},
        "friendships": len(p.pairs),
        "conversations": {
            "direct": sum(1 for c in p.convs if c.kind == "direct"),
            "group": len(group_sizes),
            "group_sizes": group_sizes,
            "messages_largest": sizes[:10],
            "messages_median": sizes[len(sizes) // 2],
            "over_200_messages": sum(1 for n in sizes if n > 200),
        },
        "messages": {
            "total": sum(counts.types.values()),
            "first_id": p.first_message_id,
            "types": dict(counts.types),
            "replies": counts.replies,
            "edited": counts.edited,
            "retracted": counts.retracted,
            "mean_chars": round(counts.chars / max(1, counts.types["text"]), 1),
        },
        "markers": dict(counts.markers),
        "words": dict(vocab_counts),
    }


def default_manifest(url: str) -> Path | None:
    if url.startswith("sqlite"):
        return Path(sqlite_path(url) + ".manifest.json")
    return None


def generate(
    url: str,
    *,
    users: int = 1000,
    groups: int = 50,
    messages: int = 1_000_000,
    seed: int = 1,
    workdir: Path | None = None,
    manifest_path: Path | None = None,
) -> dict[str, Any]:
    """Make the schema with a real server, then load the plan; returns the manifest."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="p2sp-gendb-") as tmp:
        make_schema(url, workdir or Path(tmp))
    now_ms = int(time.time() * 1000)
    counts = Counts()

    def build(ids: dict[str, int]) -> Plan:
        t = time.monotonic()
        p = plan(users=users, groups=groups, messages=messages, seed=seed, ids=ids, now_ms=now_ms)
        print(
            f"  plan: {users:,} users, {len(p.pairs):,} direct chats, {groups} groups, "
            f"{sum(1 for c in p.convs if p.hub_id in c.members):,} conversations of {HUB} "
            f"({time.monotonic() - t:.1f} s)"
        )
        return p

    if url.startswith("sqlite"):
        p = load_sqlite(url, build, counts)
    else:
        p = asyncio.run(load_postgres(url, build, counts))
    seconds = time.monotonic() - t0
    settings = {"users": users, "groups": groups, "messages": messages, "seed": seed}
    out = manifest(p, counts, url, seconds, settings)
    path = manifest_path or default_manifest(url)
    if path is not None:
        path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
        print(f"  manifest: {path}")
    print(f"generated {out['messages']['total']:,} messages in {seconds:.1f} s")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench gendb",
        description="Fill a new database with a team's history (for python -m bench read).",
    )
    ap.add_argument(
        "--database-url", required=True, help="sqlite+aiosqlite:///FILE or postgresql+asyncpg://..."
    )
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--manifest",
        type=Path,
        help="where to write the manifest (default: FILE.manifest.json beside a SQLite file)",
    )
    args = ap.parse_args(argv)
    if args.users < 2 or args.messages < 1:
        ap.error("--users must be at least 2 and --messages at least 1")
    if not args.database_url.startswith("sqlite") and args.manifest is None:
        ap.error("--manifest FILE is needed with a PostgreSQL database")
    generate(
        args.database_url,
        users=args.users,
        groups=args.groups,
        messages=args.messages,
        seed=args.seed,
        manifest_path=args.manifest,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
