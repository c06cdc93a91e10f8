-- wrk script for bench/api.py: submit jobs; every tenth request lists jobs instead.
local token = os.getenv("ARKWRIGHT_TOKEN")
local tenants = {"research", "public-services", "startups"}
local sizes = {1, 8, 64}
local n = 0

request = function()
  n = n + 1
  local headers = {["Authorization"] = "Bearer " .. token}
  if n % 10 == 0 then
    return wrk.format("GET", "/v1/jobs?limit=50", headers, nil)
  end
  headers["Content-Type"] = "application/json"
  local i = n % 3 + 1
  local body = string.format(
    '{"tenant":"%s","gpus":%d,"time":"4h","job_type":"llm-finetune"}', tenants[i], sizes[i])
  return wrk.format("POST", "/v1/jobs", headers, body)
end
