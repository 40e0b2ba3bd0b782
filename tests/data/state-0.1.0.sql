-- State file of commune-monitor 0.1.0 (commit ef31661), written 2026-11-30 by tests/data/make_state_0_1_0.py
BEGIN TRANSACTION;
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL
);
INSERT INTO "alerts" VALUES(1,'host_offline|08|02473|pc-01','resolved','{"id": 1, "rule": "host_offline", "province": "08", "area": "yen-son", "commune": "02473", "host": "pc-01", "severity": "critical", "summary_vi": "M\u00e1y pc-01 m\u1ea5t k\u1ebft n\u1ed1i", "summary_en": "pc-01 is offline", "state": "resolved", "started_at": 1790000000.0, "fired_at": 1790000000.0, "resolved_at": 1790000030.0, "flaps": 0, "acked_by": "", "acked_at": 0.0, "ack_comment": "", "firing_since": 1790000000.0, "told_firing": false}');
INSERT INTO "alerts" VALUES(2,'line_down|08|02536|','pending','{"id": 2, "rule": "line_down", "province": "08", "area": "yen-son", "commune": "02536", "host": "", "severity": "critical", "summary_vi": "\u0110\u01b0\u1eddng truy\u1ec1n m\u1ea5t k\u1ebft n\u1ed1i", "summary_en": "Line down", "state": "pending", "started_at": 1790000000.0, "fired_at": 0.0, "resolved_at": 0.0, "flaps": 0, "acked_by": "", "acked_at": 0.0, "ack_comment": "", "firing_since": 0.0, "told_firing": false}');
INSERT INTO "alerts" VALUES(3,'host_offline|08|02473|pc-02','firing','{"id": 3, "rule": "host_offline", "province": "08", "area": "yen-son", "commune": "02473", "host": "pc-02", "severity": "critical", "summary_vi": "M\u00e1y pc-02 m\u1ea5t k\u1ebft n\u1ed1i", "summary_en": "pc-02 is offline", "state": "firing", "started_at": 1790000010.0, "fired_at": 1790000010.0, "resolved_at": 0.0, "flaps": 0, "acked_by": "Nguy\u1ec5n V\u0103n A", "acked_at": 1790000020.0, "ack_comment": "\u0111ang x\u1eed l\u00fd", "firing_since": 1790000010.0, "told_firing": true}');
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
INSERT INTO "api_tokens" VALUES('grafana-viewer','viewer','83aa61d69ea70f639f3396b626cb90fc2bda006b84858f96e2725e7a92576e13',1.79599798779658198361e+09);
INSERT INTO "api_tokens" VALUES('ops-admin','admin','ac92b8fdaff06798a595938579792494b625680af810c1146b2f26614e6468e1',1.79599798779663729665e+09);
CREATE TABLE areas (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
INSERT INTO "areas" VALUES('yen-son','Yên Sơn');
INSERT INTO "areas" VALUES('minh-xuan','Minh Xuân');
CREATE TABLE commune_areas (
    commune TEXT PRIMARY KEY,
    area TEXT NOT NULL
);
INSERT INTO "commune_areas" VALUES('02473','yen-son');
INSERT INTO "commune_areas" VALUES('02536','yen-son');
INSERT INTO "commune_areas" VALUES('02215','minh-xuan');
CREATE TABLE fleet_state (host TEXT PRIMARY KEY, facts TEXT NOT NULL);
INSERT INTO "fleet_state" VALUES('08/02473/pc-01','{"interval_s": 30.0, "last_report": 1790000100.0, "offline_will": false, "disk_percent": 58.0, "mem_percent": 40.0, "swap_percent": 0.0, "cpu_percent": 12.5, "temp_c": 61.0, "temp_limit_c": 90.0, "disk_errors": 0.0, "ram_bytes": 4294967296.0, "cpu_cores": 4.0, "boot_time": 1790000050.0, "uplink": "eth0", "mem_high_since": 0.0, "cpu_high_since": 0.0, "reboots": [1790000090.0], "gaps": [], "traffic_by_day": {"2026-09-21": 300000.0}, "probe_down_since": 0.0, "degraded_since": 0.0, "samples": [[1790000095.0, 10.0, 35.0]], "speedtest_percent": 72.0}');
INSERT INTO "fleet_state" VALUES('08/02473/pc-02','{"interval_s": 30.0, "last_report": 1790000100.0, "offline_will": false, "disk_percent": 58.0, "mem_percent": 40.0, "swap_percent": 0.0, "cpu_percent": 12.5, "temp_c": 61.0, "temp_limit_c": 90.0, "disk_errors": 0.0, "ram_bytes": 4294967296.0, "cpu_cores": 4.0, "boot_time": 1790000050.0, "uplink": "eth0", "mem_high_since": 0.0, "cpu_high_since": 0.0, "reboots": [1790000090.0], "gaps": [], "traffic_by_day": {"2026-09-21": 300000.0}, "probe_down_since": 0.0, "degraded_since": 0.0, "samples": [[1790000095.0, 10.0, 35.0]], "speedtest_percent": 72.0}');
INSERT INTO "fleet_state" VALUES('08/02536/pc-03','{"interval_s": 30.0, "last_report": 1790000100.0, "offline_will": false, "disk_percent": 58.0, "mem_percent": 40.0, "swap_percent": 0.0, "cpu_percent": 12.5, "temp_c": 61.0, "temp_limit_c": 90.0, "disk_errors": 0.0, "ram_bytes": 4294967296.0, "cpu_cores": 4.0, "boot_time": 1790000050.0, "uplink": "eth0", "mem_high_since": 0.0, "cpu_high_since": 0.0, "reboots": [1790000090.0], "gaps": [], "traffic_by_day": {"2026-09-21": 300000.0}, "probe_down_since": 0.0, "degraded_since": 0.0, "samples": [[1790000095.0, 10.0, 35.0]], "speedtest_percent": 90.0}');
CREATE TABLE hosts (
    province TEXT NOT NULL,
    commune TEXT NOT NULL,
    host TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'unknown',
    status_since REAL NOT NULL DEFAULT 0,
    agent_version TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (province, commune, host)
);
INSERT INTO "hosts" VALUES('08','02215','pc-old',1789992800.0,1789992800.0,'offline',1789992800.0,'');
INSERT INTO "hosts" VALUES('08','02473','pc-02',1789999970.0,1790000110.0,'online',1789999970.0,'0.1.0');
INSERT INTO "hosts" VALUES('08','02473','pc-01',1789999970.0,1790000110.0,'online',1789999970.0,'0.1.0');
INSERT INTO "hosts" VALUES('08','02536','pc-03',1789999970.0,1790000110.0,'online',1789999970.0,'0.1.0');
CREATE TABLE lines (
    circuit_id TEXT PRIMARY KEY,
    province TEXT NOT NULL,
    commune TEXT NOT NULL,
    isp TEXT NOT NULL,
    contracted_down_mbps REAL NOT NULL,
    contracted_up_mbps REAL NOT NULL,
    install_date TEXT NOT NULL DEFAULT ''
);
INSERT INTO "lines" VALUES('VNPT-02473-01','08','02473','VNPT',100.0,100.0,'2025-08-15');
INSERT INTO "lines" VALUES('VT-02536-01','08','02536','Viettel',80.0,40.0,'');
CREATE TABLE mqtt_credentials (
    username TEXT PRIMARY KEY,
    province TEXT NOT NULL,
    commune TEXT NOT NULL,
    host TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    enrolled_at REAL NOT NULL
);
INSERT INTO "mqtt_credentials" VALUES('08-02473-pc-01','08','02473','pc-01','$7$101$bnU3obJMQtuE8YMU$gQXcUhfC+ez0YgKzAnm1gbxouL2CIBkSsDZF7riacwpyfv3Qf8BOgNygUobmwC5IlLHrwhshANQBwrLS7TC+Zw==',1.79599798779820394515e+09);
INSERT INTO "mqtt_credentials" VALUES('08-02536-pc-03','08','02536','pc-03','$7$101$NoXBXlDDLKWJ9PWT$8NOmufVcPG84IBEV2QyOEI9h3QSfZf76g+icLWkGCu9JwndZFtXJlQlxjayUJgR7dbirH1XICO+02ej9tdkPfw==',1.79599798779905486106e+09);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    alert TEXT NOT NULL
);
INSERT INTO "outbox" VALUES(1,'firing','{"id": 1, "rule": "host_offline", "province": "08", "area": "yen-son", "commune": "02473", "host": "pc-01", "severity": "critical", "summary_vi": "M\u00e1y pc-01 m\u1ea5t k\u1ebft n\u1ed1i", "summary_en": "pc-01 is offline", "state": "firing", "started_at": 1790000000.0, "fired_at": 1790000000.0, "resolved_at": 0.0, "flaps": 0, "acked_by": "", "acked_at": 0.0, "ack_comment": "", "firing_since": 1790000000.0, "told_firing": true}');
INSERT INTO "outbox" VALUES(2,'firing','{"id": 3, "rule": "host_offline", "province": "08", "area": "yen-son", "commune": "02473", "host": "pc-02", "severity": "critical", "summary_vi": "M\u00e1y pc-02 m\u1ea5t k\u1ebft n\u1ed1i", "summary_en": "pc-02 is offline", "state": "firing", "started_at": 1790000010.0, "fired_at": 1790000010.0, "resolved_at": 0.0, "flaps": 0, "acked_by": "", "acked_at": 0.0, "ack_comment": "", "firing_since": 1790000010.0, "told_firing": true}');
INSERT INTO "outbox" VALUES(3,'resolved','{"id": 1, "rule": "host_offline", "province": "08", "area": "yen-son", "commune": "02473", "host": "pc-01", "severity": "critical", "summary_vi": "M\u00e1y pc-01 m\u1ea5t k\u1ebft n\u1ed1i", "summary_en": "pc-01 is offline", "state": "resolved", "started_at": 1790000000.0, "fired_at": 1790000000.0, "resolved_at": 1790000030.0, "flaps": 0, "acked_by": "", "acked_at": 0.0, "ack_comment": "", "firing_since": 1790000000.0, "told_firing": false}');
CREATE TABLE silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
);
INSERT INTO "silences" VALUES(1,'{"id": 0, "matchers": {"commune": "02536"}, "starts_at": 1790000000.0, "ends_at": 1790086400.0, "author": "ops", "comment": "thay c\u00e1p quang"}');
INSERT INTO "silences" VALUES(2,'{"id": 0, "matchers": {"host": "pc-03", "rule": "host_offline"}, "starts_at": 1789913600.0, "ends_at": 1789996400.0, "author": "ops", "comment": "\u0111\u00e3 h\u1ebft h\u1ea1n"}');
CREATE INDEX lines_by_commune ON lines (commune);
CREATE INDEX alerts_by_key ON alerts (key, state);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('alerts',3);
INSERT INTO "sqlite_sequence" VALUES('outbox',3);
INSERT INTO "sqlite_sequence" VALUES('silences',2);
COMMIT;
