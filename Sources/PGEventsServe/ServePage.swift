/// The page `GET /` serves: connect with a token (and relations), see changes live as a table per relation.
/// No build step; plain DOM code.
enum ServePage {
    static let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>pgevents serve</title>
        <style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px}#status{color:#555}</style>
        </head><body>
        <h1>pgevents serve</h1>
        <form id="connect"><label>Token <input id="token" size="60"></label>
        <label>Relations <input id="rel" placeholder="public.parcels"></label> <button>Connect</button></form>
        <p id="status">not connected</p><div id="tables"></div>
        <script>
        const params = new URLSearchParams(location.search);
        document.getElementById('token').value = params.get('token') || '';
        document.getElementById('rel').value = params.get('rel') || '';
        const tables = {};
        function table(name) {
          if (tables[name]) return tables[name];
          const h = document.createElement('h2'); h.textContent = name;
          const t = document.createElement('table'); t.dataset.relation = name;
          document.getElementById('tables').append(h, t);
          return tables[name] = {element: t, columns: null};
        }
        function addRow(name, op, row) {
          const t = table(name);
          if (!t.columns) {
            t.columns = Object.keys(row);
            const tr = t.element.insertRow(); ['op', ...t.columns].forEach(c => { const th = document.createElement('th'); th.textContent = c; tr.append(th); });
          }
          const tr = t.element.insertRow(); tr.insertCell().textContent = op;
          t.columns.forEach(c => { tr.insertCell().textContent = row[c] === null || row[c] === undefined ? '' : (typeof row[c] === 'object' ? JSON.stringify(row[c]) : String(row[c])); });
        }
        function show(message) {
          if (message.type === 'batch' && message.batch) {
            for (const db of Object.values(message.batch)) for (const [rel, ops] of Object.entries(db)) {
              const rows = ops.full_data || [];
              for (const [op, keys] of Object.entries(ops)) {
                if (op === 'full_data') continue;
                if (op === 'DELETE' || rows.length === 0) keys.forEach(([k, v]) => addRow(rel, op, {[k]: v}));
              }
              const op = ops.INSERT ? 'INSERT' : 'UPDATE';
              rows.forEach(r => addRow(rel, op, r));
            }
          } else if (message.type === 'event' || message.type === 'batch') {
            const items = message.type === 'batch' ? (message.payload.items || []) : [message.payload];
            items.forEach(i => addRow(i.table || message.channel || message.stream, i.op || '', typeof i.row === 'object' && i.row ? i.row : i));
          } else if (message.type === 'error') {
            document.getElementById('status').textContent = 'error: ' + message.error + ': ' + message.message;
          }
        }
        let since = null;
        function connect() {
          const q = new URLSearchParams({token: document.getElementById('token').value});
          const rel = document.getElementById('rel').value; if (rel) q.set('rel', rel);
          if (since) q.set('since', since);
          const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/broadcast?' + q);
          ws.onopen = () => { document.getElementById('status').textContent = 'connected'; };
          ws.onmessage = e => { const m = JSON.parse(e.data); if (m.id) since = m.id; show(m); };
          ws.onclose = e => { if (document.getElementById('status').textContent === 'connected') document.getElementById('status').textContent = 'closed (' + e.code + ' ' + e.reason + ')'; };
        }
        document.getElementById('connect').onsubmit = e => { e.preventDefault(); connect(); };
        if (params.get('token')) connect();
        </script></body></html>
        """
}
