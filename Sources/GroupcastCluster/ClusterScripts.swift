/// The Lua scripts that change the cluster's state, each atomic in Redis (Docs/cluster.md,
/// "Schema"). Every script gets the key prefix as ARGV[1] and builds the keys from it, so it
/// needs one Redis (or one Redis Cluster slot), not a sharded cluster.
///
/// Names are checked by the Swift side (``RoomName/isValid(_:)``): no spaces, colons or
/// slashes, so `NODE ROOM ID TYPE` values and `PREFIX:room:ROOM:node:NODE` keys split cleanly.
enum ClusterScripts {
    /// Shared by the scripts that forget a node: its room hashes, its index entries, its SSRC
    /// claims and its places in relay trees go (the trees of its own streams whole; its
    /// children's edges too, so they attach again), and each of its rooms hears `gone NODE`.
    private static let forgetNode = """
        local function forget(prefix, node)
          local rooms = redis.call('SMEMBERS', prefix .. ':node:' .. node .. ':rooms')
          for _, room in ipairs(rooms) do
            local relays = prefix .. ':room:' .. room .. ':relays'
            for _, ssrc in ipairs(redis.call('SMEMBERS', relays)) do
              local key = prefix .. ':room:' .. room .. ':relay:' .. ssrc
              local owner = redis.call('HGET', prefix .. ':ssrcs', ssrc)
              if owner and string.match(owner, '^(%S+)') == node then
                redis.call('DEL', key)
              else
                local edges = redis.call('HGETALL', key)
                for i = 1, #edges, 2 do
                  if edges[i] == node or string.match(edges[i + 1], '^(%S+)') == node then redis.call('HDEL', key, edges[i]) end
                end
              end
              if redis.call('EXISTS', key) == 0 then redis.call('SREM', relays, ssrc) end
            end
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

    /// ARGV: prefix, node, ttl ms, advertise, load, now ms, relay fan-out, then the rooms the
    /// node has participants in. Refreshes the node's heartbeat and its room hashes; returns how many of
    /// them were missing (the node's own key included): anything missing means the server lost
    /// state (restart, eviction, a late heartbeat) and the node publishes everything again.
    /// -1: the node left, nothing was written.
    static let heartbeat = """
        local prefix, node, ttl = ARGV[1], ARGV[2], ARGV[3]
        local key = prefix .. ':node:' .. node
        if redis.call('EXISTS', key .. ':left') == 1 then return -1 end
        local missing = 1 - redis.call('EXISTS', key)
        redis.call('HSET', key, 'advertise', ARGV[4], 'load', ARGV[5], 'heartbeat', ARGV[6], 'fanout', ARGV[7])
        redis.call('PEXPIRE', key, ttl)
        redis.call('SADD', prefix .. ':nodes', node)
        for i = 8, #ARGV do
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

    /// ARGV: prefix, node, room, id, then its SSRCs. Removes the record, the claims the
    /// participant still holds and their relay trees; returns whether the record existed.
    static let removeParticipant = """
        local prefix, node, room, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
        local ssrcs = prefix .. ':ssrcs'
        for i = 5, #ARGV do
          local owner = redis.call('HGET', ssrcs, ARGV[i])
          if owner then
            local ownerNode, ownerRoom, ownerID = string.match(owner, '^(%S+) (%S+) (%S+)')
            if ownerNode == node and ownerID == id then
              redis.call('HDEL', ssrcs, ARGV[i])
              redis.call('SREM', prefix .. ':node:' .. node .. ':ssrcs', ARGV[i])
              redis.call('DEL', prefix .. ':room:' .. ownerRoom .. ':relay:' .. ARGV[i])
              redis.call('SREM', prefix .. ':room:' .. ownerRoom .. ':relays', ARGV[i])
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

    /// ARGV: prefix, room. `{NODE, {field, record, ...}, ...}` for every live node in the room,
    /// then `{'relay:SSRC', {child, 'PARENT STATE', ...}, ...}` for every relay tree of the room
    /// (node names have no `:`, so the two cannot be confused).
    static let roomView = """
        local prefix, room = ARGV[1], ARGV[2]
        local view = {}
        for _, node in ipairs(redis.call('SMEMBERS', prefix .. ':room:' .. room .. ':nodes')) do
          if redis.call('EXISTS', prefix .. ':node:' .. node) == 1 then
            table.insert(view, node)
            table.insert(view, redis.call('HGETALL', prefix .. ':room:' .. room .. ':node:' .. node))
          end
        end
        for _, ssrc in ipairs(redis.call('SMEMBERS', prefix .. ':room:' .. room .. ':relays')) do
          local edges = redis.call('HGETALL', prefix .. ':room:' .. room .. ':relay:' .. ssrc)
          if #edges > 0 then
            table.insert(view, 'relay:' .. ssrc)
            table.insert(view, edges)
          end
        end
        return view
        """

    /// ARGV: prefix, room, SSRC, child, origin node, maximum depth. Attaches `child` to the
    /// relay tree of SSRC (`P:room:ROOM:relay:SSRC`, child -> `PARENT pending|ready`) and
    /// returns `{PARENT, STATE}`, or `{'none'}` when the origin node is not alive. A child whose
    /// parent's chain still reaches the origin through live nodes keeps it. Otherwise the
    /// parent is the origin while it has fewer children than its `fanout` (0: no limit), else
    /// the carrier of the stream with room that reports the lowest `load` (then the shallowest,
    /// then by name), else the origin all the same (the fan-out is a preference, never a
    /// refusal). A carrier must be at most `maximum depth - 1` deep and outside the child's own
    /// subtree, so no cycle can form and no chain grows beyond the maximum depth. The new edge
    /// is `pending`: its parent sends nothing on it until the child confirmed it.
    static let attachRelay = """
        local prefix, room, ssrc, child, origin = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
        local maxDepth = tonumber(ARGV[6])
        local function alive(node) return redis.call('EXISTS', prefix .. ':node:' .. node) == 1 end
        if child == origin or not alive(origin) then return {'none'} end
        local key = prefix .. ':room:' .. room .. ':relay:' .. ssrc
        local parents, states = {}, {}
        local edges = redis.call('HGETALL', key)
        for i = 1, #edges, 2 do
          local parent, state = string.match(edges[i + 1], '^(%S+) (%a+)$')
          if parent then parents[edges[i]], states[edges[i]] = parent, state end
        end
        -- The node's depth (the origin's is 0), or nil when its chain of parents is broken (a
        -- dead or detached node), longer than the maximum or passes through the child.
        local function depth(node)
          local d = 0
          while node ~= origin do
            if node == child or d >= maxDepth or not alive(node) then return nil end
            node = parents[node]
            if not node then return nil end
            d = d + 1
          end
          return d
        end
        local current = parents[child]
        if current and depth(current) then return {current, states[child]} end
        local function node(name, field) return redis.call('HGET', prefix .. ':node:' .. name, field) end
        local function hasRoom(name)
          local fanout = tonumber(node(name, 'fanout')) or 0
          if fanout <= 0 then return true end
          local count = 0
          for c, p in pairs(parents) do if p == name and c ~= child then count = count + 1 end end
          return count < fanout
        end
        local chosen = origin
        if not hasRoom(origin) then
          local best, bestLoad, bestDepth
          for name in pairs(parents) do
            local d = depth(name)
            if d and d < maxDepth and hasRoom(name) then
              local load = tonumber(node(name, 'load')) or 0
              if not best or load < bestLoad or (load == bestLoad and (d < bestDepth or (d == bestDepth and name < best))) then
                best, bestLoad, bestDepth = name, load, d
              end
            end
          end
          if best then chosen = best end
        end
        redis.call('HSET', key, child, chosen .. ' pending')
        redis.call('SADD', prefix .. ':room:' .. room .. ':relays', ssrc)
        return {chosen, 'pending'}
        """

    /// ARGV: prefix, room, SSRC, child, parent. The child installed its route from `parent`:
    /// the edge becomes `ready` (if it is still that pending edge) and the room hears
    /// `relay SSRC CHILD PARENT`, so the parent starts sending. Returns 1, or 0 if the edge
    /// changed meanwhile.
    static let confirmRelay = """
        local prefix, room, ssrc, child, parent = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
        local key = prefix .. ':room:' .. room .. ':relay:' .. ssrc
        if redis.call('HGET', key, child) ~= parent .. ' pending' then return 0 end
        redis.call('HSET', key, child, parent .. ' ready')
        redis.call('PUBLISH', prefix .. ':room:' .. room .. ':events', 'relay ' .. ssrc .. ' ' .. child .. ' ' .. parent)
        return 1
        """

    /// ARGV: prefix, room, SSRC, child. The child no longer takes the stream: its edge goes,
    /// and so do its children's (they attach again elsewhere); the room hears
    /// `relay SSRC CHILD -`. Returns whether the child had an edge.
    static let detachRelay = """
        local prefix, room, ssrc, child = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
        local key = prefix .. ':room:' .. room .. ':relay:' .. ssrc
        local removed = redis.call('HDEL', key, child)
        local edges = redis.call('HGETALL', key)
        for i = 1, #edges, 2 do
          if string.match(edges[i + 1], '^(%S+)') == child then redis.call('HDEL', key, edges[i]) end
        end
        if redis.call('EXISTS', key) == 0 then redis.call('SREM', prefix .. ':room:' .. room .. ':relays', ssrc) end
        if removed == 1 then
          redis.call('PUBLISH', prefix .. ':room:' .. room .. ':events', 'relay ' .. ssrc .. ' ' .. child .. ' -')
        end
        return removed
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
