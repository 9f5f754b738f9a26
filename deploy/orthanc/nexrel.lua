-- Tell Nexrel about each instance Orthanc stores (deploy/orthanc/README.md).
--
-- Nexrel answers 202 (queued) or 200 (already known: a resend is harmless), then fetches the
-- instance itself with GET /instances/{id}/file and Orthanc's credentials. Settings come from
-- Orthanc's environment:
--   NEXREL_WEBHOOK_URL  e.g. https://nexrel.example.ca/api/dental/dicom/receive
--   NEXREL_API_KEY      a key created in Nexrel's admin (API keys)

local webhookUrl = os.getenv('NEXREL_WEBHOOK_URL') or 'http://127.0.0.1:8000/api/dental/dicom/receive'
local apiKey = os.getenv('NEXREL_API_KEY') or ''

if apiKey == '' then
   print('nexrel.lua: NEXREL_API_KEY is not set; Nexrel will refuse the notifications')
end

function OnStoredInstance(instanceId, tags, metadata, origin)
   local remoteAet = ''
   if origin ~= nil and origin['RemoteAet'] ~= nil then
      remoteAet = origin['RemoteAet']
   elseif metadata ~= nil and metadata['RemoteAET'] ~= nil then
      remoteAet = metadata['RemoteAET']
   end

   local body = DumpJson({ instance_id = instanceId, remote_aet = remoteAet }, true)
   local headers = {
      ['Content-Type'] = 'application/json',
      ['Authorization'] = 'Bearer ' .. apiKey,
   }
   -- HttpPost raises on a transport or HTTP error: log it, never block the store.
   local ok, answer = pcall(HttpPost, webhookUrl, body, headers)
   if not ok or answer == nil then
      print('nexrel.lua: webhook failed for instance ' .. instanceId .. ': ' .. tostring(answer))
   end
end
