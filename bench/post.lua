-- wrk script: POST the documentation's sample Sns.CallbackFriendAdd body
-- (three pairs) to the URL wrk is given, the query of which load.sh sets.
-- BODY_FILE overrides the body; paths are relative to the repository root.
local path = os.getenv("BODY_FILE") or "examples/callbacks/friend_add.json"
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
