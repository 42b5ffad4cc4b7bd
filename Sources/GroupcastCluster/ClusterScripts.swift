/// The Lua scripts that change the cluster's state, each atomic in Redis (Docs/cluster.md,
/// "Schema"). Every script gets the key prefix as ARGV[1] and builds the keys from it, so it
/// needs one Redis (or one Redis Cluster slot), not a sharded cluster.
///
/// Names are checked by the Swift side (``RoomName/isValid(_:)``): no spaces, colons or
/// slashes, so `NODE ROOM ID TYPE` values and `PREFIX:room:ROOM:node:NODE` keys split cleanly.
enum ClusterScripts {
    /// Shared by the scripts that forget a node: its room hashes, its index entries and its
    /// SSRC claims go, and each of its rooms hears `gone NODE`.
    private static let forgetNode = """
        local function forget(prefix, node)
          local rooms = redis.call('SMEMBERS', prefix .. ':node:' .. node .. ':rooms')
          for _, room in ipairs(rooms) do
            redis.call('DEL', prefix .. ':room:' .. room .. ':node:' .. node)
            redis.call('SREM', prefix .. ':room:' .. room .. ':nodes', node)
            redis.call('PUBLISH', prefix .. ':room:' .. room .. ':events', 'gone ' .. node)
          end
          for _, ssrc in ipairs(redis.call('SMEMBERS', prefix .. ':node:' .. node .. ':ssrcs')) do
            local owner = redis.call('HGET', prefix .. ':ssrcs', ssrc)
            if owner and string.match(owner, '^(%S+)') == node then redis.call('HDEL', prefix .. ':ssrcs', ssrc) end
          end
          redis.call('DEL', prefix .. ':node:' .. node .. ':rooms', prefix .. ':node:' .. node .. ':ssrcs')
        end
        """

    /// ARGV: prefix, node. A node starting (again) drops what an earlier run of it left,
    /// including the mark of an earlier leave.
    static let resetNode = forgetNode + """

        forget(ARGV[1], ARGV[2])
        redis.call('DEL', ARGV[1] .. ':node:' .. ARGV[2] .. ':left')
        return 0
        """

    /// ARGV: prefix, node, ttl ms. A node leaving on purpose: its state and its heartbeat go at
    /// once, and `P:node:NODE:left` (for one node timeout) refuses a heartbeat or publish of
    /// this run that was already on its way.
    static let leaveNode = forgetNode + """

        forget(ARGV[1], ARGV[2])
        redis.call('DEL', ARGV[1] .. ':node:' .. ARGV[2])
        redis.call('SREM', ARGV[1] .. ':nodes', ARGV[2])
        redis.call('SET', ARGV[1] .. ':node:' .. ARGV[2] .. ':left', '1', 'PX', ARGV[3])
        return 0
        """

    /// ARGV: prefix. Forgets every node whose heartbeat expired; returns their names. Any node
    /// may run it: the first to see a dead node forgets it, the others find nothing to do.
    static let reap = forgetNode + """

        local prefix = ARGV[1]
        local reaped = {}
        for _, node in ipairs(redis.call('SMEMBERS', prefix .. ':nodes')) do
          if redis.call('EXISTS', prefix .. ':node:' .. node) == 0 then
            forget(prefix, node)
            redis.call('SREM', prefix .. ':nodes', node)
            table.insert(reaped, node)
          end
        end
        return reaped
        """

    /// ARGV: prefix, node, ttl ms, advertise, load, now ms, then the rooms the node has
    /// participants in. Refreshes the node's heartbeat and its room hashes; returns how many of
    /// them were missing (the node's own key included): anything missing means the server lost
    /// state (restart, eviction, a late heartbeat) and the node publishes everything again.
    /// -1: the node left, nothing was written.
    static let heartbeat = """
        local prefix, node, ttl = ARGV[1], ARGV[2], ARGV[3]
        local key = prefix .. ':node:' .. node
        if redis.call('EXISTS', key .. ':left') == 1 then return -1 end
        local missing = 1 - redis.call('EXISTS', key)
        redis.call('HSET', key, 'advertise', ARGV[4], 'load', ARGV[5], 'heartbeat', ARGV[6])
        redis.call('PEXPIRE', key, ttl)
        redis.call('SADD', prefix .. ':nodes', node)
        for i = 7, #ARGV do
          if redis.call('PEXPIRE', prefix .. ':room:' .. ARGV[i] .. ':node:' .. node, ttl) == 0 then missing = missing + 1 end
        end
        return missing
        """

    /// ARGV: prefix, node, room, id, record, ttl ms, then SSRC and type name pairs. Claims every
    /// SSRC (all or none) and stores the record; returns `{'ok', 'join'|'update'}`,
    /// `{'conflict', SSRC, OWNER}` or `{'left'}` (the node left). A claim of a node whose
    /// heartbeat expired is taken over.
    static let publishParticipant = """
        local prefix, node, room, id, record, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
        if redis.call('EXISTS', prefix .. ':node:' .. node .. ':left') == 1 then return {'left'} end
        local ssrcs = prefix .. ':ssrcs'
        for i = 7, #ARGV, 2 do
          local owner = redis.call('HGET', ssrcs, ARGV[i])
          if owner then
            local ownerNode, ownerID = string.match(owner, '^(%S+) %S+ (%S+)')
            -- A malformed claim (not NODE ROOM ID TYPE) is overwritten.
            if ownerNode and not (ownerNode == node and ownerID == id) then
              if ownerNode == node or redis.call('EXISTS', prefix .. ':node:' .. ownerNode) == 1 then
                return {'conflict', ARGV[i], owner}
              end
            end
          end
        end
        for i = 7, #ARGV, 2 do
          redis.call('HSET', ssrcs, ARGV[i], node .. ' ' .. room .. ' ' .. id .. ' ' .. ARGV[i + 1])
          redis.call('SADD', prefix .. ':node:' .. node .. ':ssrcs', ARGV[i])
        end
        local hash = prefix .. ':room:' .. room .. ':node:' .. node
        local added = redis.call('HSET', hash, id, record)
        redis.call('PEXPIRE', hash, ttl)
        redis.call('SADD', prefix .. ':room:' .. room .. ':nodes', node)
        redis.call('SADD', prefix .. ':node:' .. node .. ':rooms', room)
        redis.call('SADD', prefix .. ':nodes', node)
        local change = added == 1 and 'join' or 'update'
        redis.call('PUBLISH', prefix .. ':room:' .. room .. ':events', change .. ' ' .. node .. ' ' .. id)
        return {'ok', change}
        """

    /// ARGV: prefix, node, room, id, then its SSRCs. Removes the record and the claims the
    /// participant still holds; returns whether the record existed.
    static let removeParticipant = """
        local prefix, node, room, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
        local ssrcs = prefix .. ':ssrcs'
        for i = 5, #ARGV do
          local owner = redis.call('HGET', ssrcs, ARGV[i])
          if owner then
            local ownerNode, ownerID = string.match(owner, '^(%S+) %S+ (%S+)')
            if ownerNode == node and ownerID == id then
              redis.call('HDEL', ssrcs, ARGV[i])
              redis.call('SREM', prefix .. ':node:' .. node .. ':ssrcs', ARGV[i])
            end
          end
        end
        local hash = prefix .. ':room:' .. room .. ':node:' .. node
        local removed = redis.call('HDEL', hash, id)
        if redis.call('EXISTS', hash) == 0 then
          redis.call('SREM', prefix .. ':room:' .. room .. ':nodes', node)
          redis.call('SREM', prefix .. ':node:' .. node .. ':rooms', room)
        end
        if removed == 1 then
          redis.call('PUBLISH', prefix .. ':room:' .. room .. ':events', 'leave ' .. node .. ' ' .. id)
        end
        return removed
        """

    /// ARGV: prefix, room. `{NODE, {field, record, ...}, ...}` for every live node in the room.
    static let roomView = """
        local prefix, room = ARGV[1], ARGV[2]
        local view = {}
        for _, node in ipairs(redis.call('SMEMBERS', prefix .. ':room:' .. room .. ':nodes')) do
          if redis.call('EXISTS', prefix .. ':node:' .. node) == 1 then
            table.insert(view, node)
            table.insert(view, redis.call('HGETALL', prefix .. ':room:' .. room .. ':node:' .. node))
          end
        end
        return view
        """

    /// ARGV: prefix. `{NODE, {field, value, ...}, ...}` for every live node.
    static let liveNodes = """
        local prefix = ARGV[1]
        local nodes = {}
        for _, node in ipairs(redis.call('SMEMBERS', prefix .. ':nodes')) do
          local fields = redis.call('HGETALL', prefix .. ':node:' .. node)
          if #fields > 0 then
            table.insert(nodes, node)
            table.insert(nodes, fields)
          end
        end
        return nodes
        """
}
