-- chatroom.lua: a Wireshark dissector for the chat protocol that chat-server speaks
-- (the original C++ teaching server's C structs; docs/PROTOCOL.md is the contract).
--
-- It decodes both directions of a connection on the server's TCP port (12345 unless
-- the preference "chatroom.port" says otherwise): requests from the client, an 8-byte
-- HEAD{type, length} and its body, and replies from the server, a 12-byte
-- FEEDBACK{type, length, flag} and its body. Every field is shown with its name, types
-- and flags by name, texts as UTF-8 up to their NUL. A frame split over TCP segments is
-- reassembled, and a segment holding many frames is split into them. What the server
-- would refuse or what breaks the framing (a length outside 0..=4096) is marked as
-- expert info, and the dissector stays in step after it.
--
-- The receipts extension (docs/PROTOCOL.md §3, types 4 to 8) is decoded too: RECEIPTS
-- and its feedback, MESSAGE (a CHAT frame with the message's id), ACK, RECEIVED and READ
-- with their refusals. An id is `(milliseconds since the Unix epoch << 20) | n`, n
-- counting the receiver's messages within that millisecond from 0: it is shown as a
-- number (`chatroom.id`), as the UTC millisecond it carries (`chatroom.id.time`) and
-- as n (`chatroom.id.sequence`). Ids below 2^56 are the first receipts server's,
-- microseconds since the epoch: shown as that microsecond, with no sequence.
--
-- Load it in Wireshark by copying it into the personal Lua plugin folder:
--     mkdir -p ~/.local/lib/wireshark/plugins
--     cp contrib/chatroom.lua ~/.local/lib/wireshark/plugins/
-- (Help > About Wireshark > Folders shows the folder), or for one run of tshark:
--     tshark -X lua_script:contrib/chatroom.lua -r capture.pcap
-- A server on another port: -o chatroom.port:23456 (or Edit > Preferences >
-- Protocols > CHATROOM), or Decode As: -d tcp.port==23456,chatroom.
-- Passwords are shown only by their length unless -o chatroom.show_password:TRUE.

local chatroom = Proto("chatroom", "Chatroom protocol (chat-server)")

-- Sizes from docs/PROTOCOL.md §1.
local HEAD_LEN = 8           -- HEAD { i32 type; i32 length; }
local FEEDBACK_LEN = 12      -- FEEDBACK { i32 type; i32 length; i32 flag; }
local NAME_LEN = 20          -- name[20], sender[20], receiver[20]
local PASSWORD_LEN = 20      -- password[20]
local TEXT_LEN = 100         -- message[100]
local LOGIN_BODY_LEN = NAME_LEN + PASSWORD_LEN           -- USERINFO, 40
local CHAT_BODY_LEN = NAME_LEN + NAME_LEN + TEXT_LEN     -- CHATMSG, 140
-- The receipts extension's bodies (docs/PROTOCOL.md §3): a u64 id, little-endian.
local ID_LEN = 8
local MESSAGE_BODY_LEN = ID_LEN + CHAT_BODY_LEN          -- id + CHATMSG, 148
local ACK_BODY_LEN = ID_LEN                              -- id, 8
local RECEIPT_BODY_LEN = ID_LEN + NAME_LEN               -- id + name[20], 28
local MICROS_PER_SEC = 1000000
local MILLIS_PER_SEC = 1000
local NANOS_PER_MILLI = 1000000
local NANOS_PER_MICRO = 1000
-- Ids (src/message_id.rs): the millisecond above the low SEQUENCE_BITS, the sequence in
-- them; an id below FIRST_MILLISECOND_ID (2^56) is an older id in microseconds.
local SEQUENCE_BITS = 20
local SEQUENCE_MASK = UInt64(2 ^ SEQUENCE_BITS - 1)
local FIRST_MILLISECOND_ID = UInt64(0, 2 ^ (56 - 32))
-- A request length outside 0..=MAX_BODY_LEN makes the server close the connection
-- (docs/PROTOCOL.md §2): nothing after it can be trusted to be framed.
local MAX_BODY_LEN = 4096
-- A USERS reply lists every online user, 20 bytes each, so it may well pass 4096 bytes.
-- Beyond this many names the dissector takes the length for garbage rather than wait
-- for megabytes that never come.
local MAX_LISTED_USERS = 100000
local DEFAULT_PORT = 12345
local ROOM = "*"

local LOGIN, CHAT, USERS = 1, 2, 3
local RECEIPTS, MESSAGE, ACK, RECEIVED, READ = 4, 5, 6, 7, 8
local type_names = {
    [LOGIN] = "LOGIN", [CHAT] = "CHAT", [USERS] = "USERS", [RECEIPTS] = "RECEIPTS",
    [MESSAGE] = "MESSAGE", [ACK] = "ACK", [RECEIVED] = "RECEIVED", [READ] = "READ",
}
-- The body length of each request type the server reads (a RECEIPTS request has none).
local request_body_lens = {
    [LOGIN] = LOGIN_BODY_LEN, [CHAT] = CHAT_BODY_LEN, [USERS] = 0, [RECEIPTS] = 0,
    [ACK] = ACK_BODY_LEN, [READ] = RECEIPT_BODY_LEN,
}
-- Types only the server sends: from a client, the server takes them for unknown types.
local server_only = { [MESSAGE] = true, [RECEIVED] = true }

-- docs/PROTOCOL.md §2, the table of flags: the names for the tree, and how the Info
-- column says them.
local flag_names = {
    [1] = "OK", [0] = "QUEUED", [-1] = "REJECTED", [-2] = "NOT_LOGGED_IN",
    [-3] = "MALFORMED", [-4] = "UNSUPPORTED", [-5] = "BUSY", [-6] = "TOO_MANY_ATTEMPTS",
    [-7] = "MAILBOX_FULL", [-8] = "NOT_STORED",
}
local OK, UNSUPPORTED = 1, -4
local flag_words = {}
for value, name in pairs(flag_names) do
    flag_words[value] = name:lower():gsub("_", " ")
end

local f = {
    direction = ProtoField.string("chatroom.direction", "Direction"),
    type = ProtoField.int32("chatroom.type", "Type", base.DEC, type_names),
    length = ProtoField.int32("chatroom.length", "Length", base.DEC),
    flag = ProtoField.int32("chatroom.flag", "Flag", base.DEC, flag_names),
    name = ProtoField.string("chatroom.name", "Name", base.UNICODE),
    password = ProtoField.string("chatroom.password", "Password", base.UNICODE),
    password_length = ProtoField.uint32("chatroom.password_length", "Password length",
        base.DEC),
    sender = ProtoField.string("chatroom.sender", "Sender", base.UNICODE),
    receiver = ProtoField.string("chatroom.receiver", "Receiver", base.UNICODE),
    text = ProtoField.string("chatroom.text", "Message", base.UNICODE),
    user_count = ProtoField.uint32("chatroom.users.count", "Online users", base.DEC),
    user = ProtoField.string("chatroom.user", "User", base.UNICODE),
    id = ProtoField.uint64("chatroom.id", "Id", base.DEC),
    id_time = ProtoField.absolute_time("chatroom.id.time", "Id as time", base.UTC),
    id_sequence = ProtoField.uint32("chatroom.id.sequence",
        "Id's sequence in its millisecond", base.DEC),
    after_nul = ProtoField.bytes("chatroom.after_nul", "Bytes after the NUL"),
    body = ProtoField.bytes("chatroom.body", "Body"),
}
chatroom.fields = {
    f.direction, f.type, f.length, f.flag, f.name, f.password, f.password_length,
    f.sender, f.receiver, f.text, f.user_count, f.user, f.id, f.id_time, f.id_sequence, f.after_nul,
    f.body,
}

local e = {
    bad_length = ProtoExpert.new("chatroom.length.bad", "Length outside 0..=4096",
        expert.group.MALFORMED, expert.severity.ERROR),
    wrong_length = ProtoExpert.new("chatroom.length.wrong", "Wrong body length for the type",
        expert.group.MALFORMED, expert.severity.WARN),
    no_body = ProtoExpert.new("chatroom.length.no_body",
        "A LOGIN feedback announces 40 bytes and carries none",
        expert.group.PROTOCOL, expert.severity.CHAT),
    unknown_type = ProtoExpert.new("chatroom.type.unknown", "Unknown type",
        expert.group.UNDECODED, expert.severity.WARN),
    server_only = ProtoExpert.new("chatroom.type.server_only",
        "A type only the server sends", expert.group.PROTOCOL, expert.severity.WARN),
    unknown_flag = ProtoExpert.new("chatroom.flag.unknown", "Unknown flag",
        expert.group.UNDECODED, expert.severity.WARN),
    after_nul = ProtoExpert.new("chatroom.text.after_nul", "Bytes after the NUL",
        expert.group.PROTOCOL, expert.severity.NOTE),
    not_utf8 = ProtoExpert.new("chatroom.text.not_utf8", "Text is not UTF-8",
        expert.group.MALFORMED, expert.severity.WARN),
}
chatroom.experts = {
    e.bad_length, e.wrong_length, e.no_body, e.unknown_type, e.server_only, e.unknown_flag,
    e.after_nul, e.not_utf8,
}

chatroom.prefs.port = Pref.uint("Server TCP port", DEFAULT_PORT,
    "The TCP port the chat server listens on: segments to it are requests, "
        .. "segments from it are replies")
chatroom.prefs.show_password = Pref.bool("Show passwords", false,
    "Show LOGIN passwords in clear (they travel in clear); otherwise only their length")

-- The length of the valid UTF-8 sequence starting at byte `i` of `s`, or nil if none
-- starts there (no overlong forms, no surrogates, at most U+10FFFF): the rules of the
-- server's own check, Rust's str::from_utf8.
local function utf8_sequence_len(s, i)
    local c = s:byte(i)
    local extra, low, high
    if c < 0x80 then
        return 1
    elseif c >= 0xC2 and c <= 0xDF then
        extra, low, high = 1, 0x80, 0xBF
    elseif c >= 0xE0 and c <= 0xEF then
        extra = 2
        low = (c == 0xE0) and 0xA0 or 0x80
        high = (c == 0xED) and 0x9F or 0xBF
    elseif c >= 0xF0 and c <= 0xF4 then
        extra = 3
        low = (c == 0xF0) and 0x90 or 0x80
        high = (c == 0xF4) and 0x8F or 0xBF
    else
        return nil
    end
    for k = 1, extra do
        local b = s:byte(i + k)
        if b == nil then return nil end
        if k == 1 then
            if b < low or b > high then return nil end
        elseif b < 0x80 or b > 0xBF then
            return nil
        end
    end
    return extra + 1
end

local REPLACEMENT_CHARACTER = "\239\191\189" -- U+FFFD in UTF-8

-- `s` as valid UTF-8, and whether it was: each byte that starts no valid sequence is
-- replaced by U+FFFD. (Done here because TvbRange:string(ENC_UTF_8) cuts its result
-- to the input's length when replacing makes it longer.)
local function lossy_utf8(s)
    local out, i, valid = {}, 1, true
    while i <= #s do
        local len = utf8_sequence_len(s, i)
        if len then
            out[#out + 1] = s:sub(i, i + len - 1)
            i = i + len
        else
            out[#out + 1] = REPLACEMENT_CHARACTER
            valid = false
            i = i + 1
        end
    end
    return table.concat(out), valid
end

-- A fixed-size text field at `offset`: its value is the bytes before the first NUL
-- (all of them if there is none). Bytes after the NUL that are not zero padding are
-- what an original client's memory left there; the server ignores and zeroes them,
-- and they are marked here. Returns the value as text, invalid UTF-8 replaced.
local function add_text(tree, tvb, offset, size, field, hidden_value)
    local raw = tvb:raw(offset, size)
    local nul = raw:find("\0", 1, true)
    local len = nul and (nul - 1) or size
    local value = raw:sub(1, len)
    local item
    if hidden_value then
        item = tree:add(field, tvb:range(offset, size), hidden_value)
    else
        item = tree:add_packet_field(field, tvb:range(offset, len), ENC_UTF_8)
    end
    local text, valid = lossy_utf8(value)
    -- A password is compared byte for byte and need not be UTF-8; a name must be.
    if not valid and field == f.text then
        item:add_proto_expert_info(e.not_utf8, "Not valid UTF-8: the server relays it "
            .. "as it is, and clients show replacement characters")
    elseif not valid and field ~= f.password then
        item:add_proto_expert_info(e.not_utf8,
            "Not valid UTF-8: the server answers such a name with MALFORMED")
    end
    if nul then
        local rest = raw:sub(nul + 1)
        if rest:find("[^%z]") then
            local garbage = item:add(f.after_nul, tvb:range(offset + nul, size - nul))
            garbage:add_proto_expert_info(e.after_nul, string.format(
                "%d bytes after the NUL: ignored, and zeroed in every frame the server "
                    .. "writes", size - nul))
        end
    end
    return text
end

local function type_word(value)
    return type_names[value] or string.format("UNKNOWN(%d)", value)
end

-- The type field; `unknown_means` says what an unknown value means in this direction.
local function add_type(tree, tvb, unknown_means)
    local value = tvb:range(0, 4):le_int()
    local item = tree:add_le(f.type, tvb:range(0, 4))
    if not type_names[value] then
        item:add_proto_expert_info(e.unknown_type,
            string.format("Unknown type %d: %s", value, unknown_means))
    end
    return value
end

-- Text for the Info column, on one line: control characters (a newline in a message)
-- written as \xNN.
local function one_line(s)
    return (s:gsub("%c", function(c) return string.format("\\x%02x", c:byte()) end))
end

-- The CHATMSG at `offset`; returns its words for the Info column, or "" for an all-zero
-- body (the server's reply to a CHAT of the wrong length).
local function add_chat_body(tree, tvb, offset)
    local body = tree:add(tvb:range(offset, CHAT_BODY_LEN), "CHATMSG")
    local sender = add_text(body, tvb, offset, NAME_LEN, f.sender)
    local receiver = add_text(body, tvb, offset + NAME_LEN, NAME_LEN, f.receiver)
    local text = add_text(body, tvb, offset + 2 * NAME_LEN, TEXT_LEN, f.text)
    if sender == "" and receiver == "" and text == "" then
        return ""
    end
    local to = receiver
    if receiver == ROOM then to = "* (the room)" end
    return string.format(' %s → %s "%s"', one_line(sender), one_line(to), one_line(text))
end

-- A message id at `offset` (docs/PROTOCOL.md §3): a u64, the millisecond since the Unix
-- epoch at which the server accepted the message above its low 20 bits, the message's
-- place among the receiver's messages of that millisecond in them. Shown as its number
-- and, below it, as that time in UTC and that sequence; an id of the first receipts
-- server (below 2^56: microseconds) as its microsecond. Returns the id as decimal text,
-- and its tree item.
local function add_id(tree, tvb, offset)
    local range = tvb:range(offset, ID_LEN)
    local id = range:le_uint64()
    local item = tree:add_le(f.id, range)
    if id >= FIRST_MILLISECOND_ID then
        local millis = id:rshift(SEQUENCE_BITS)
        local secs = (millis / MILLIS_PER_SEC):tonumber()
        local nanos = (millis % MILLIS_PER_SEC):tonumber() * NANOS_PER_MILLI
        item:add(f.id_time, range, NSTime(secs, nanos)):set_generated()
        local sequence = id:band(SEQUENCE_MASK):tonumber()
        item:add(f.id_sequence, range, sequence):set_generated()
    elseif id ~= UInt64(0) then
        -- Id 0 is no time: the echo of a refused message carries it.
        local secs = (id / MICROS_PER_SEC):tonumber()
        local micros = (id % MICROS_PER_SEC):tonumber()
        item:add(f.id_time, range, NSTime(secs, micros * NANOS_PER_MICRO)):set_generated()
    end
    return tostring(id), item
end

-- The body of a RECEIVED or READ frame at `offset`: the id and a name, which is
-- `name_field` (the messages' sender in a READ request, their receiver otherwise).
-- `meaning` is what the frame says, with %s for the name. Returns the id and the name.
local function add_receipt_body(tree, tvb, offset, name_field, meaning)
    local body = tree:add(tvb:range(offset, RECEIPT_BODY_LEN), "Receipt")
    local id = add_id(body, tvb, offset)
    local name = add_text(body, tvb, offset + ID_LEN, NAME_LEN, name_field)
    body:append_text(": " .. string.format(meaning, one_line(name)))
    return id, one_line(name)
end

-- The Info column holds one entry per frame: the first frame of a packet replaces
-- TCP's summary, the next ones are appended. The mark that a packet already has an
-- entry lives in the packet's own private table, so that dissecting a packet again
-- (as the Wireshark GUI does when a packet is clicked) starts afresh.
local function add_info(pinfo, words)
    if pinfo.private.chatroom_info == nil then
        pinfo.private.chatroom_info = "1"
        pinfo.cols.info:set(words)
    else
        pinfo.cols.info:append(" | " .. words)
    end
    pinfo.cols.info:fence()
end

-- How long the frame starting at `offset` is, for dissect_tcp_pdus. A length that
-- cannot be trusted counts as none: the frame is its header alone, so that the
-- dissector never waits for bytes that are not coming and the next bytes are framed
-- on their own.
local function request_pdu_len(tvb, pinfo, offset)
    local length = tvb:range(offset + 4, 4):le_int()
    if length < 0 or length > MAX_BODY_LEN then
        return HEAD_LEN
    end
    return HEAD_LEN + length
end

-- A reply's body is not always its length field (docs/PROTOCOL.md §1 and §3): a LOGIN
-- feedback has none, a CHAT reply always has the 140-byte message (clients read 12
-- bytes, then 140), a MESSAGE always its id and message (148 bytes), a RECEIVED or READ
-- with flag 1 its id and name (28 bytes), USERS and the rest (the refusals of the
-- receipts extension among them, which have no body) carry `length` bytes. The one
-- MESSAGE without a body is the server's answer to a client that sent type 5, a type
-- only the server sends: UNSUPPORTED, as to any unknown type.
local function reply_body_len(kind, length, flag)
    if kind == LOGIN then
        return 0
    elseif kind == CHAT then
        return CHAT_BODY_LEN
    elseif kind == MESSAGE and flag ~= UNSUPPORTED then
        return MESSAGE_BODY_LEN
    elseif (kind == RECEIVED or kind == READ) and flag == OK then
        return RECEIPT_BODY_LEN
    elseif kind == USERS then
        if length >= 0 and length % NAME_LEN == 0 and length <= MAX_LISTED_USERS * NAME_LEN then
            return length
        end
        return 0
    elseif length >= 0 and length <= MAX_BODY_LEN then
        return length
    end
    return 0
end

local function reply_pdu_len(tvb, pinfo, offset)
    local kind = tvb:range(offset, 4):le_int()
    local length = tvb:range(offset + 4, 4):le_int()
    local flag = tvb:range(offset + 8, 4):le_int()
    return FEEDBACK_LEN + reply_body_len(kind, length, flag)
end

local function dissect_request(tvb, pinfo, root)
    local tree = root:add(chatroom, tvb(), "Chatroom request")
    tree:add(f.direction, "request (client → server)"):set_generated()
    local kind = add_type(tree, tvb, "the server skips its body and answers UNSUPPORTED")
    local length = tvb:range(4, 4):le_int()
    local length_item = tree:add_le(f.length, tvb:range(4, 4))
    local words

    if length < 0 or length > MAX_BODY_LEN then
        length_item:add_proto_expert_info(e.bad_length, string.format(
            "Length %d is outside 0..=%d: the server closes the connection", length,
            MAX_BODY_LEN))
        words = string.format("%s length %d [malformed]", type_word(kind), length)
    elseif kind == LOGIN and length == LOGIN_BODY_LEN then
        local body = tree:add(tvb:range(HEAD_LEN, LOGIN_BODY_LEN), "USERINFO")
        local name = add_text(body, tvb, HEAD_LEN, NAME_LEN, f.name)
        local pw_offset = HEAD_LEN + NAME_LEN
        local raw = tvb:raw(pw_offset, PASSWORD_LEN)
        local nul = raw:find("\0", 1, true)
        local pw_len = nul and (nul - 1) or PASSWORD_LEN
        if chatroom.prefs.show_password then
            add_text(body, tvb, pw_offset, PASSWORD_LEN, f.password)
        else
            add_text(body, tvb, pw_offset, PASSWORD_LEN, f.password,
                string.format("(%d bytes, not shown)", pw_len))
        end
        body:add(f.password_length, tvb:range(pw_offset, PASSWORD_LEN), pw_len)
            :set_generated()
        words = "LOGIN " .. one_line(name)
    elseif kind == CHAT and length == CHAT_BODY_LEN then
        words = "CHAT" .. add_chat_body(tree, tvb, HEAD_LEN)
    elseif kind == USERS and length == 0 then
        words = "USERS"
    elseif kind == RECEIPTS and length == 0 then
        words = "RECEIPTS"
    elseif kind == ACK and length == ACK_BODY_LEN then
        words = "ACK " .. add_id(tree, tvb, HEAD_LEN)
    elseif kind == READ and length == RECEIPT_BODY_LEN then
        local id, sender = add_receipt_body(tree, tvb, HEAD_LEN, f.sender,
            "the person here has seen %s's messages up to this id")
        words = string.format("READ for %s up to %s", sender, id)
    else
        if length > 0 then
            tree:add(f.body, tvb:range(HEAD_LEN, length))
        end
        words = string.format("%s %d bytes", type_word(kind), length)
        if server_only[kind] then
            tree:add_proto_expert_info(e.server_only, string.format(
                "%s is a frame only the server sends: the server skips its body and "
                    .. "answers UNSUPPORTED", type_names[kind]))
            words = words .. " [server's type]"
        elseif type_names[kind] then
            length_item:add_proto_expert_info(e.wrong_length, string.format(
                "A %s body is %d bytes: the server skips this one and answers MALFORMED",
                type_names[kind], request_body_lens[kind]))
            words = words .. " [wrong length]"
        end
    end
    tree:append_text(", " .. words)
    add_info(pinfo, words)
    return tvb:len()
end

local function dissect_reply(tvb, pinfo, root)
    local tree = root:add(chatroom, tvb(), "Chatroom reply")
    tree:add(f.direction, "reply (server → client)"):set_generated()
    local kind = add_type(tree, tvb, "the server answers a request of a type it does not "
        .. "know with that type and UNSUPPORTED")
    local length = tvb:range(4, 4):le_int()
    local length_item = tree:add_le(f.length, tvb:range(4, 4))
    local flag = tvb:range(8, 4):le_int()
    local flag_item = tree:add_le(f.flag, tvb:range(8, 4))
    local flag_word = flag_words[flag]
    if not flag_word then
        flag_word = string.format("flag %d [unknown]", flag)
        flag_item:add_proto_expert_info(e.unknown_flag, string.format(
            "Flag %d is not one docs/PROTOCOL.md defines", flag))
    end
    local words = string.format("FEEDBACK %s %s", type_word(kind), flag_word)
    local body_len = reply_body_len(kind, length, flag)

    if kind == LOGIN then
        if length == LOGIN_BODY_LEN then
            length_item:add_proto_expert_info(e.no_body,
                "Length says 40, but no body follows a LOGIN feedback: the original's "
                    .. "quirk, kept for its clients, which read exactly 12 bytes")
        else
            length_item:add_proto_expert_info(e.wrong_length, string.format(
                "A LOGIN feedback says 40 (and has no body), not %d", length))
        end
    elseif kind == CHAT then
        if length ~= CHAT_BODY_LEN then
            length_item:add_proto_expert_info(e.wrong_length, string.format(
                "A CHAT reply says 140 and carries 140 bytes, not %d", length))
        end
        words = words .. add_chat_body(tree, tvb, FEEDBACK_LEN)
    elseif kind == USERS then
        if body_len ~= length then
            length_item:add_proto_expert_info(e.bad_length, string.format(
                "A USERS reply carries N names of %d bytes, not %d bytes", NAME_LEN, length))
            words = words .. " [malformed]"
        else
            local count = math.floor(length / NAME_LEN)
            local list = tree:add(f.user_count, tvb:range(4, 4), count)
            list:set_generated()
            local names = {}
            for i = 0, count - 1 do
                names[#names + 1] = add_text(list, tvb, FEEDBACK_LEN + i * NAME_LEN, NAME_LEN,
                    f.user)
            end
            if count > 0 then
                words = words .. " " .. one_line(table.concat(names, ", "))
            end
        end
    elseif kind == MESSAGE and body_len == MESSAGE_BODY_LEN then
        if length ~= MESSAGE_BODY_LEN then
            length_item:add_proto_expert_info(e.wrong_length, string.format(
                "A MESSAGE says 148 and carries 148 bytes, not %d", length))
        end
        local id, id_item = add_id(tree, tvb, FEEDBACK_LEN)
        if id == "0" then
            id_item:append_text(" (none: the echo of a refused message)")
        end
        -- The server's own frames are named by their type; a flag other than OK (an
        -- echo's) is said, as in a CHAT feedback.
        words = "MESSAGE"
        if flag ~= OK then
            words = words .. " " .. flag_word
        end
        words = words .. add_chat_body(tree, tvb, FEEDBACK_LEN + ID_LEN) .. " id " .. id
    elseif (kind == RECEIVED or kind == READ) and body_len == RECEIPT_BODY_LEN then
        if length ~= RECEIPT_BODY_LEN then
            length_item:add_proto_expert_info(e.wrong_length, string.format(
                "A %s with flag 1 says 28 and carries 28 bytes, not %d", type_names[kind],
                length))
        end
        local meaning = "%s's client has every message you sent them up to this id"
        if kind == READ then
            meaning = "%s has seen your messages up to this id"
        end
        local id, receiver = add_receipt_body(tree, tvb, FEEDBACK_LEN, f.receiver, meaning)
        words = string.format("%s %s up to %s", type_names[kind], receiver, id)
    elseif body_len ~= length then
        length_item:add_proto_expert_info(e.bad_length, string.format(
            "Length %d is outside 0..=%d", length, MAX_BODY_LEN))
        words = words .. " [malformed]"
    elseif length > 0 then
        if kind >= RECEIPTS and kind <= READ then
            length_item:add_proto_expert_info(e.wrong_length, string.format(
                "A %s feedback with flag %d has no body, not %d bytes", type_names[kind],
                flag, length))
            words = words .. " [wrong length]"
        end
        tree:add(f.body, tvb:range(FEEDBACK_LEN, length))
    end
    tree:append_text(", " .. words)
    add_info(pinfo, words)
    return tvb:len()
end

function chatroom.dissector(tvb, pinfo, root)
    pinfo.cols.protocol = "CHATROOM"
    -- The server's port tells the direction: the port the TCP dissector matched us on
    -- (the preference's, or one given with Decode As), else the preference's.
    local server_port = pinfo.match_uint
    if server_port == 0 or (pinfo.src_port ~= server_port and pinfo.dst_port ~= server_port) then
        server_port = chatroom.prefs.port
    end
    if pinfo.dst_port == server_port then
        dissect_tcp_pdus(tvb, root, HEAD_LEN, request_pdu_len, dissect_request)
    else
        dissect_tcp_pdus(tvb, root, FEEDBACK_LEN, reply_pdu_len, dissect_reply)
    end
    return tvb:len()
end

-- Registered last: a protocol can join the TCP port table only once it has a dissector.
local tcp_port = DissectorTable.get("tcp.port")
local registered_port = DEFAULT_PORT
tcp_port:add(registered_port, chatroom)

function chatroom.prefs_changed()
    if chatroom.prefs.port ~= registered_port then
        tcp_port:remove(registered_port, chatroom)
        registered_port = chatroom.prefs.port
        tcp_port:add(registered_port, chatroom)
    end
end
