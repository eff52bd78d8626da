//! The status page as HTML (docs/operations.md "Status page"): one
//! self-contained document, the tables rendered here so they read without
//! JavaScript, a small inline script that re-renders them from the JSON
//! (`Accept: application/json`) every [`REFRESH_MS`] without reloading the
//! page, and inline CSS that also fits a phone. Every text is HTML-escaped.
//! Pure.

use std::fmt::Write as _;

use super::report::{human_mb, human_secs, PeerRow, PortView, Report, StorageRow, SyncDelay};

/// How often the script refreshes the tables (milliseconds).
pub const REFRESH_MS: u32 = 3000;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;padding:12px;color:#222;background:#fafafa}\
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 6px}small{color:#666;font-weight:normal}\
.scroll{overflow-x:auto}table{border-collapse:collapse;background:#fff;min-width:100%}\
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;white-space:nowrap;vertical-align:top}\
th{background:#eee}tr.problem td{background:#fde8e8}td.bad{color:#b00;font-weight:600}td.good{color:#070}\
td.why{white-space:normal;min-width:16em;color:#b00}.me{font-size:11px;background:#def;padding:0 4px;border-radius:3px}\
#summary.ok{color:#070}#problems{margin:4px 0;padding-left:20px;color:#b00}#summary.bad{color:#b00;font-weight:600}footer{margin-top:14px;color:#666;font-size:12px}\
@media(max-width:600px){body{padding:6px;font-size:13px}th,td{padding:3px 4px}}";

const SCRIPT: &str = r#"(function(){
function e(s){return String(s==null?'':s).replace(/[&<>"']/g,function(c){return '&#'+c.charCodeAt(0)+';';});}
function secs(s){return s<120?s+' s':s<7200?Math.floor(s/60)+' min':s<172800?(s/3600).toFixed(1)+' h':(s/86400).toFixed(1)+' d';}
function mb(m){return m==null?'?':m<10240?m+' MB':(m/1024).toFixed(1)+' GB';}
function date(t){return t?new Date(t*1000).toUTCString().replace('UTC','GMT'):'never';}
function port(p){if(!p)return '<td>not probed yet</td>';
 return p.ok?'<td class="good">'+p.port+' ok, '+p.rtt_ms.toFixed(1)+' ms</td>':'<td class="bad">'+p.port+' '+e(p.error)+'</td>';}
function storage(s,now){var d=s.sync_delay==null?'-':s.sync_delay==='never'?'never synced':secs(s.sync_delay);
 return '<tr class="storage'+(s.problems.length?' problem':'')+'" data-ip="'+e(s.ip)+'"><td>'+e(s.id)+(s.self?' <span class="me">this node</span>':'')+
 '</td><td>'+e(s.ip)+':'+s.storage_port+'</td><td class="'+(s.state==='ACTIVE'?'good':'bad')+'">'+e(s.state)+'</td><td>'+e(s.version)+
 '</td><td>'+(s.heartbeat_age==null?'never':secs(s.heartbeat_age)+' ago')+'</td><td>'+mb(s.free_mb)+' / '+mb(s.total_mb)+
 '</td><td>'+s.uploads+' / '+s.uploads_total+'</td><td>'+s.downloads+' / '+s.downloads_total+'</td><td>'+date(s.last_synced_timestamp)+
 '</td><td>'+d+'</td><td>'+e(s.sync_source||'-')+'</td><td class="why">'+e(s.problems.join('; '))+'</td></tr>';}
function peer(p,now){return '<tr class="peer'+(p.problems.length?' problem':'')+'" data-ip="'+e(p.ip)+'"><td>'+e(p.ip)+'</td>'+port(p.http)+port(p.storage)+
 '<td>'+(p.http?secs(Math.max(0,now-p.http.at))+' ago':'-')+'</td><td class="'+(p.breaker==='closed'?'good':'bad')+'">'+p.breaker+
 '</td><td>'+p.proxied+' / '+p.redirected+' / '+p.failed+'</td></tr>';}
function render(j){var c=j.cluster,now=c.now,h='';
 c.groups.forEach(function(g){h+=groupHead(g,c)+'<tbody>';g.storages.forEach(function(s){h+=storage(s,now);});if(!g.storages.length)h+=NOSTORAGE;h+='</tbody></table></div>';});
 document.getElementById('groups').innerHTML=h||'<p>No group listed by a tracker yet.</p>';
 var r='';j.reach.forEach(function(p){r+=peer(p,now);});document.querySelector('#reach tbody').innerHTML=r;
 var v='';j.lag_events.forEach(function(x){v+='<tr><td>'+date(x.at)+'</td><td>'+e(x.file_id)+'</td><td>'+e(x.outcome)+'</td><td>'+e(x.peer||'-')+'</td><td>'+x.status+'</td></tr>';});
 document.querySelector('#events tbody').innerHTML=v;
 var pl='';c.groups.forEach(function(g){g.storages.forEach(function(s){s.problems.forEach(function(p){pl+='<li><b>'+e(s.ip)+'</b>: '+e(p)+'</li>';});});});
 j.reach.forEach(function(p){p.problems.forEach(function(x){pl+='<li><b>'+e(p.ip)+'</b>: '+e(x)+'</li>';});});
 document.getElementById('problems').innerHTML=pl;
 var s=document.getElementById('summary');s.className=c.problems?'bad':'ok';
 s.textContent=(c.problems?c.problems+' problem(s)':'no problem')+' · tracker '+(c.tracker.last_error?'error: '+c.tracker.last_error:c.tracker.refreshed_at?'answered '+secs(Math.max(0,now-c.tracker.refreshed_at))+' ago':'not asked');
 document.getElementById('updated').textContent=date(now);document.body.setAttribute('data-refreshed',now);}
function groupHead(g,c){return '<h2>'+e(g.name)+' <small>'+g.storages.length+' storage(s) · usable free '+mb(g.usable_free_mb)+
 ' · storage_sync_file_max_delay '+secs(c.storage_sync_file_max_delay)+'</small></h2><div class="scroll"><table class="storages">'+document.getElementById('storage-head').innerHTML;}
function tick(){fetch('/status',{headers:{Accept:'application/json'},cache:'no-store'}).then(function(r){return r.json();}).then(render).catch(function(){});}
setInterval(tick,REFRESH);tick();})();"#;

const NO_STORAGE: &str = "<tr><td colspan=\"12\">No storage listed: no tracker_server, or no tracker answered yet.</td></tr>";

const STORAGE_HEAD: &str = "<thead><tr><th>ID</th><th>address</th><th>state</th><th>version</th><th>heartbeat</th><th>free / total</th><th>uploads ok / all</th><th>downloads ok / all</th><th>last synced</th><th>sync delay</th><th>sync source</th><th>problems</th></tr></thead>";

/// Appends `s` HTML-escaped.
pub fn esc(o: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
}

fn date(t: i64) -> String {
    if t <= 0 {
        return "never".into();
    }
    crate::http::conditional::http_date_string(t)
}

/// The whole page for `r`.
pub fn render(r: &Report) -> String {
    let mut o = String::with_capacity(8192);
    o.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>fdfs-httpd status</title><style>");
    o.push_str(STYLE);
    o.push_str("</style></head><body><header><h1>fdfs-httpd ");
    esc(&mut o, &r.version);
    o.push_str(" <small>on ");
    let node: Vec<String> = r.node.iter().map(ToString::to_string).collect();
    esc(&mut o, &node.join(", "));
    o.push_str("</small></h1>");
    let n = r.problem_count();
    let _ = write!(
        o,
        "<p id=\"summary\" class=\"{}\">{} · tracker ",
        if n > 0 { "bad" } else { "ok" },
        if n > 0 {
            format!("{n} problem(s)")
        } else {
            "no problem".into()
        }
    );
    match (&r.tracker.last_error, r.tracker.refreshed_at) {
        (Some(e), _) => {
            o.push_str("error: ");
            esc(&mut o, e);
        }
        (None, Some(t)) => {
            let _ = write!(o, "answered {} ago", human_secs((r.now - t).max(0)));
        }
        (None, None) => o.push_str("not asked"),
    }
    o.push_str("</p><ul id=\"problems\">");
    for (who, why) in r.problems() {
        o.push_str("<li><b>");
        esc(&mut o, &who);
        o.push_str("</b>: ");
        esc(&mut o, &why);
        o.push_str("</li>");
    }
    o.push_str("</ul></header><template id=\"storage-head\">");
    o.push_str(STORAGE_HEAD);
    o.push_str("</template><section id=\"groups\">");
    for g in &r.groups {
        o.push_str("<h2>");
        esc(&mut o, &g.name);
        let _ = write!(
            o,
            " <small>{} storage(s) · usable free {} · storage_sync_file_max_delay {}</small></h2><div class=\"scroll\"><table class=\"storages\">{STORAGE_HEAD}<tbody>",
            g.storages.len(),
            g.usable_free_mb().map_or("?".into(), human_mb),
            human_secs(i64::try_from(r.max_delay).unwrap_or(i64::MAX)),
        );
        for s in &g.storages {
            storage_row(&mut o, s);
        }
        if g.storages.is_empty() {
            o.push_str(NO_STORAGE);
        }
        o.push_str("</tbody></table></div>");
    }
    if r.groups.is_empty() {
        o.push_str("<p>No group listed by a tracker yet.</p>");
    }
    o.push_str("</section><h2>Reach from this node</h2><div class=\"scroll\"><table id=\"reach\"><thead><tr><th>peer</th><th>HTTP port</th><th>storage port</th><th>probed</th><th>breaker</th><th>proxied / redirected / failed</th></tr></thead><tbody>");
    for p in &r.peers {
        peer_row(&mut o, p, r.now);
    }
    o.push_str("</tbody></table></div><h2>Recent lag events</h2><div class=\"scroll\"><table id=\"events\"><thead><tr><th>when</th><th>file</th><th>outcome</th><th>peer</th><th>status</th></tr></thead><tbody>");
    for e in &r.events {
        let _ = write!(o, "<tr><td>{}</td><td>", date(e.at));
        esc(&mut o, &e.file_id);
        let _ = write!(
            o,
            "</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.outcome,
            e.peer.map_or("-".into(), |p| p.to_string()),
            e.status
        );
    }
    let _ = write!(
        o,
        "</tbody></table></div><footer>Updated <span id=\"updated\">{}</span> · refreshes every {} s · <a href=\"/metrics\">metrics</a></footer><script>",
        date(r.now),
        REFRESH_MS / 1000
    );
    o.push_str(
        &SCRIPT
            .replace("NOSTORAGE", &format!("'{NO_STORAGE}'"))
            .replace("REFRESH", &REFRESH_MS.to_string()),
    );
    o.push_str("</script></body></html>\n");
    o
}

fn storage_row(o: &mut String, s: &StorageRow) {
    let _ = write!(
        o,
        "<tr class=\"storage{}\" data-ip=\"",
        if s.problems.is_empty() {
            ""
        } else {
            " problem"
        }
    );
    esc(o, &s.ip);
    o.push_str("\"><td>");
    esc(o, &s.id);
    if s.is_self {
        o.push_str(" <span class=\"me\">this node</span>");
    }
    o.push_str("</td><td>");
    esc(o, &s.ip);
    let _ = write!(
        o,
        ":{}</td><td class=\"{}\">{}</td><td>",
        s.storage_port,
        if s.state == "ACTIVE" { "good" } else { "bad" },
        s.state
    );
    esc(o, &s.version);
    let delay = match s.sync_delay {
        SyncDelay::NothingToSync => "-".into(),
        SyncDelay::NeverSynced => "never synced".into(),
        SyncDelay::Seconds(d) => human_secs(d),
    };
    let _ = write!(
        o,
        "</td><td>{}</td><td>{} / {}</td><td>{} / {}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>",
        s.heartbeat_age
            .map_or("never".into(), |a| format!("{} ago", human_secs(a))),
        human_mb(s.free_mb),
        human_mb(s.total_mb),
        s.uploads.0,
        s.uploads.1,
        s.downloads.0,
        s.downloads.1,
        date(s.last_synced),
        delay
    );
    esc(
        o,
        if s.sync_source.is_empty() {
            "-"
        } else {
            &s.sync_source
        },
    );
    o.push_str("</td><td class=\"why\">");
    esc(o, &s.problems.join("; "));
    o.push_str("</td></tr>");
}

fn port_cell(o: &mut String, p: Option<&PortView>) {
    match p {
        None => o.push_str("<td>not probed yet</td>"),
        Some(PortView {
            port,
            error: Some(e),
            ..
        }) => {
            let _ = write!(o, "<td class=\"bad\">{port} ");
            esc(o, e);
            o.push_str("</td>");
        }
        Some(PortView { port, rtt, .. }) => {
            let ms = rtt.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            let _ = write!(o, "<td class=\"good\">{port} ok, {ms:.1} ms</td>");
        }
    }
}

fn peer_row(o: &mut String, p: &PeerRow, now: i64) {
    let _ = write!(
        o,
        "<tr class=\"peer{}\" data-ip=\"{}\"><td>{}</td>",
        if p.problems().is_empty() {
            ""
        } else {
            " problem"
        },
        p.ip,
        p.ip
    );
    port_cell(o, p.http.as_ref());
    port_cell(o, p.storage.as_ref());
    let probed = p.http.as_ref().map_or("-".into(), |h| {
        format!("{} ago", human_secs((now - h.at).max(0)))
    });
    let _ = write!(
        o,
        "<td>{probed}</td><td class=\"{}\">{}</td><td>{} / {} / {}</td></tr>",
        if p.breaker == "closed" { "good" } else { "bad" },
        p.breaker,
        p.proxied,
        p.redirected,
        p.failed
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::report::{GroupReport, TrackerInfo};
    use std::time::Duration;

    fn row(ip: &str, state: &'static str, problems: Vec<String>) -> StorageRow {
        StorageRow {
            id: ip.into(),
            ip: ip.into(),
            storage_port: 23000,
            state,
            version: "6.16.1".into(),
            heartbeat_age: Some(3),
            total_mb: 1000,
            free_mb: 500,
            uploads: (1, 2),
            downloads: (3, 4),
            last_synced: 0,
            sync_delay: SyncDelay::NothingToSync,
            sync_source: String::new(),
            is_self: false,
            problems,
        }
    }

    #[test]
    fn tables_without_script_and_escaped() {
        let r = Report {
            now: 1000,
            version: "0.1.0".into(),
            node: vec!["10.0.0.1".parse().unwrap()],
            max_delay: 86400,
            tracker: TrackerInfo {
                servers: vec![],
                refreshed_at: Some(990),
                last_error: None,
            },
            groups: vec![GroupReport {
                name: "g<1>".into(),
                stat: None,
                storages: vec![
                    row("10.0.0.1", "ACTIVE", vec![]),
                    row("10.0.0.2", "OFFLINE", vec!["state OFFLINE <x>".into()]),
                ],
            }],
            peers: vec![PeerRow {
                ip: "10.0.0.2".parse().unwrap(),
                http: Some(PortView {
                    port: 8888,
                    at: 998,
                    rtt: None,
                    error: Some("Connection refused (os error 111)".into()),
                }),
                storage: Some(PortView {
                    port: 23000,
                    at: 998,
                    rtt: Some(Duration::from_millis(1)),
                    error: None,
                }),
                breaker: "closed",
                proxied: 1,
                redirected: 2,
                failed: 3,
            }],
            events: vec![],
        };
        let h = render(&r);
        assert!(h.starts_with("<!DOCTYPE html>"));
        assert_eq!(h.matches("<tr class=\"storage\" data-ip=").count(), 1);
        assert_eq!(
            h.matches("<tr class=\"storage problem\" data-ip=").count(),
            1
        );
        assert!(h.contains("<tr class=\"peer problem\" data-ip=\"10.0.0.2\">"));
        assert!(h.contains("8888 Connection refused (os error 111)"));
        assert!(h.contains("23000 ok, 1.0 ms"));
        assert!(h.contains("g&lt;1&gt;"));
        assert!(h.contains("state OFFLINE &lt;x&gt;"));
        assert!(!h.contains("<x>"));
        assert!(h.contains("2 problem(s) · tracker answered 10 s ago"));
        assert!(
            !h.contains("http://") && !h.contains("https://"),
            "no external asset"
        );
        assert!(h.contains("setInterval(tick,3000)"));
        assert!(h.contains("<li><b>10.0.0.2</b>: state OFFLINE &lt;x&gt;</li>"));
        let empty = Report {
            groups: vec![GroupReport {
                name: "group1".into(),
                stat: None,
                storages: vec![],
            }],
            ..Report::default()
        };
        let e = render(&empty);
        assert_eq!(e.matches("No storage listed").count(), 2, "page and script");
        assert!(e.contains("<p id=\"summary\" class=\"ok\">no problem · tracker not asked"));
        assert!(h.contains("<li><b>10.0.0.2</b>: HTTP port 8888 unreachable from here: Connection refused (os error 111)</li>"));
    }
}
