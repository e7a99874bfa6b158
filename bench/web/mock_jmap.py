# A mock JMAP server for the webmail benchmark (bench/web/list.mjs): one
# Inbox of 100,000 generated messages, answered from memory, so the figure is
# the browser side alone (windowed rendering + paging), not the store.
# Usage: python3 mock_jmap.py BUILD/web PORT   (loopback only)
import http.server, json, os, sys
ROOT = sys.argv[1]
MB = [{"id":"m1","name":"INBOX","role":"inbox","parentId":None,"sortOrder":0,"totalEmails":3,"unreadEmails":2},
      {"id":"m2","name":"Drafts","role":"drafts","parentId":None,"sortOrder":0,"totalEmails":0,"unreadEmails":0},
      {"id":"m3","name":"Sent","role":"sent","parentId":None,"sortOrder":0,"totalEmails":0,"unreadEmails":0},
      {"id":"m4","name":"Archive","role":"archive","parentId":None,"sortOrder":0,"totalEmails":0,"unreadEmails":0},
      {"id":"m5","name":"Trash","role":"trash","parentId":None,"sortOrder":0,"totalEmails":0,"unreadEmails":0},
      {"id":"m6","name":"Projects","role":None,"parentId":None,"sortOrder":0,"totalEmails":0,"unreadEmails":0}]
N = 100000
def email(i):
    ja = i % 3 == 0
    return {"id": f"e{i}", "threadId": f"t{i}", "blobId": f"b{i}", "mailboxIds": {"m1": True},
            "keywords": {} if i % 4 == 0 else {"$seen": True, **({"$flagged": True} if i % 7 == 0 else {})},
            "from": [{"name": "山田太郎" if ja else "Carol Example", "email": "carol@remote.test"}],
            "to": [{"name": None, "email": "alice@example.test"}], "cc": None, "replyTo": None,
            "subject": "会議のお知らせ" if ja else f"Quarterly report #{i}",
            "receivedAt": "2026-12-0%dT0%d:00:00Z" % (1 + i % 2, i % 9), "sentAt": None, "size": 1234,
            "preview": "明日の会議は十時からです。" if ja else "The quarterly numbers are attached in spirit.",
            "hasAttachment": i % 5 == 0, "messageId": [f"m{i}@x"], "references": None,
            "textBody": [{"partId": "1", "blobId": "x", "size": 10, "type": "text/plain", "name": None, "charset": "utf-8", "disposition": None, "cid": None}],
            "htmlBody": [{"partId": "1", "blobId": "x", "size": 10, "type": "text/plain", "name": None, "charset": "utf-8", "disposition": None, "cid": None}],
            "attachments": [{"partId": "2", "blobId": "bb", "size": 2048, "type": "application/pdf", "name": "report.pdf", "charset": None, "disposition": "attachment", "cid": None}] if i % 5 == 0 else [],
            "bodyValues": {"1": {"value": ("山田です。\n明日の会議は十時からです。よろしくお願いします。\nhttps://example.com/agenda" if ja else "Hello Alice,\n\nThe quarterly numbers are attached in spirit.\n\nCarol"), "isTruncated": False}}}
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(s, *a, **k): super().__init__(*a, directory=ROOT, **k)
    def log_message(s, *a): pass
    def j(s, code, obj):
        b = json.dumps(obj).encode(); s.send_response(code); s.send_header("Content-Type","application/json"); s.send_header("Content-Length",str(len(b))); s.end_headers(); s.wfile.write(b)
    def do_GET(s):
        if s.path == "/web/session": return s.j(200, {"username":"alice@example.test","csrfToken":"x","expiresAt":0})
        if s.path == "/.well-known/jmap": return s.j(200, {"apiUrl":"/jmap/api","downloadUrl":"/d/{accountId}/{blobId}/{name}?type={type}","uploadUrl":"/u/{accountId}/","eventSourceUrl":"/es?types={types}","username":"alice@example.test","primaryAccounts":{"urn:ietf:params:jmap:mail":"a1"},"accounts":{"a1":{"name":"alice"}},"state":"1"})
        if s.path.startswith("/mail/config"):
            b = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "autoconfig.xml"),"rb").read(); s.send_response(200); s.send_header("Content-Type","application/xml"); s.send_header("Content-Length",str(len(b))); s.end_headers(); s.wfile.write(b); return
        if s.path.startswith("/es"): s.send_response(200); s.send_header("Content-Type","text/event-stream"); s.end_headers(); return
        return super().do_GET()
    def do_POST(s):
        body = json.loads(s.rfile.read(int(s.headers["Content-Length"])))
        out = []; last = {}
        for name, args, cid in body["methodCalls"]:
            if name == "Mailbox/get": r = {"list": MB}
            elif name == "Identity/get": r = {"list": [{"id":"i1","name":"Alice","email":"alice@example.test"}]}
            elif name == "Email/query":
                pos, lim = args.get("position",0), args.get("limit",50)
                tot = 3 if "text" in (args.get("filter") or {}) else N
                r = {"ids": [f"e{i}" for i in range(pos, min(tot, pos+lim))], "total": tot, "queryState": "1"}
            elif name == "Email/get":
                ids = args.get("ids") or last["ids"]
                r = {"list": [email(int(i[1:])) for i in ids]}
            elif name == "VacationResponse/get": r = {"list": [{"id":"singleton","isEnabled":True,"subject":"不在のお知らせ","textBody":"12月5日まで不在です。","fromDate":None,"toDate":"2026-12-05T00:00:00Z"}]}
            elif name == "SearchSnippet/get": r = {"list": [{"emailId": i, "subject": None, "preview": "The <mark>quarterly</mark> numbers"} for i in args["emailIds"]]}
            else: r = {}
            last = r; out.append([name, r, cid])
        s.j(200, {"methodResponses": out, "sessionState": "1"})
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
