"""Every code the collector shows people, with its Vietnamese and English words, in one place.

Logic deals in codes (``down``, ``disk_full``, ``host_offline``); what a person reads comes from
here: alert summaries, notifications, the status page, the Grafana dashboards and (later) the
monthly report. Vietnamese comes first everywhere. An English text never shows a bare code: where
people need the code too (a line reason, the English dashboard), it follows the words in brackets.

This module imports nothing from the runtime, so the dashboard builder and any report can use
it without pulling in the fleet or the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple


class Words(NamedTuple):
    """One thing said in both languages."""

    vi: str
    en: str

    def in_(self, lang: str) -> str:
        """The text in ``lang`` ("vi" or "en")."""
        return self.vi if lang == "vi" else self.en


# ---- line states ----


@dataclass(frozen=True)
class LineState:
    """A commune line's state: the number Grafana maps to a word, and its rank for "problems first"."""

    code: int  # the ``line_state_code`` field
    severity: int  # the ``line_severity`` field: higher is worse
    words: Words


LINE_STATES: Final[dict[str, LineState]] = {  # in code order
    "up": LineState(0, 0, Words("Tốt", "Up")),
    "degraded": LineState(1, 3, Words("Kém", "Degraded")),
    "down": LineState(2, 4, Words("Mất kết nối", "Down")),
    "unused": LineState(3, 2, Words("Không sử dụng", "Unused")),
    "unknown": LineState(4, 1, Words("Chưa rõ", "Unknown")),
}

# ---- why a line is in its state ----

LINE_REASONS: Final[dict[str, Words]] = {
    "all_hosts_offline": Words("mọi máy mất kết nối", "every PC is offline"),
    "wan_unreachable": Words("không tới được mạng WAN", "the WAN cannot be reached"),
    "no_agent": Words("chưa có máy nào báo cáo", "no PC has reported yet"),
    "other_uplink": Words("máy dùng đường 4G/khác", "the PCs use 4G or another uplink"),
    "low_traffic": Words("lưu lượng rất thấp", "almost no traffic"),
}


# ---- why a commune went dark (collector/fleet/outages.py) ----

OUTAGE_CAUSES: Final[dict[str, Words]] = {
    "line": Words("đứt đường truyền", "line cut"),
    "power": Words("mất điện", "power cut"),
    "office_closed": Words("trụ sở đóng cửa", "office closed"),
    "unknown": Words("chưa rõ", "unknown"),
}

# ---- exclusions from the report's adjusted figures (collector/registry/exclusions.py) ----

EXCLUSION_REASONS: Final[dict[str, Words]] = {  # the fixed list: no other reason is accepted
    "repair": Words("sửa chữa", "repair"),
    "relocation": Words("chuyển địa điểm", "relocation"),
    "contract_change": Words("thay đổi hợp đồng", "contract change"),
    "holiday": Words("ngày nghỉ", "holiday"),
    "disaster": Words("thiên tai", "natural disaster"),
    "other": Words("lý do khác", "other"),
}
EXCLUSION_SCOPES: Final[dict[str, Words]] = {
    "commune": Words("cả xã", "the whole commune"),
    "host": Words("một máy", "one PC"),
    "item": Words("một thiết bị được cấp", "one issued item"),
    "line": Words("đường truyền của xã", "the commune's line"),
}

OUTAGE_REASONS: Final[dict[str, Words]] = {
    "measured_during_outage": Words("máy vẫn đo trong lúc mất kết nối", "the PC kept measuring during the outage"),
    "gateway_ok_outside_failed": Words(
        "cổng mạng nội bộ trả lời, WAN/Internet không", "gateway answered, WAN/internet failed"
    ),
    "uptime_continuous": Words("máy không khởi động lại", "the PC did not restart"),
    "clean_stop": Words("máy được tắt đúng cách", "the PC was shut down cleanly"),
    "booted_after_outage_start": Words("máy khởi động lại sau khi mất kết nối", "the PC booted after the outage began"),
    "no_report_during_outage": Words(
        "không có số đo nào trong lúc mất kết nối", "no report was measured during the outage"
    ),
    "no_spool": Words("máy không lưu được báo cáo khi mất mạng", "the PC cannot keep reports while offline"),
    "no_boot_time": Words("chưa biết thời điểm khởi động", "boot time unknown"),
    "agent_silent_boot_unchanged": Words(
        "máy vẫn chạy nhưng phần mềm giám sát không đo (bị dừng?)",
        "the PC kept running but its agent measured nothing (killed?)",
    ),
    "rebooted_outside_outage": Words(
        "máy khởi động lại ngoài thời gian mất kết nối", "the PC restarted outside the outage"
    ),
    "too_few_hosts": Words("quá ít máy để kết luận", "too few PCs to tell"),
    "mixed_evidence": Words("các máy cho dấu hiệu khác nhau", "the PCs point to different causes"),
    "quiet_hours": Words("ngoài giờ làm việc", "outside office hours"),
    "every_host_agrees": Words("mọi máy cùng một dấu hiệu", "every PC agrees"),
}

OUTAGE_NOTICE: Final = Words(
    "{name} có kết nối trở lại sau {duration}; nguyên nhân: {cause}{detail}",
    "{name} is back after {duration}; cause: {cause}{detail}",
)
OUTAGE_DURATION: Final = Words("{hours} giờ {minutes} phút", "{hours} h {minutes} min")
OUTAGE_DETAILS: Final[dict[str, Words]] = {
    "power": Words(" (các máy khởi động lại lúc {at})", " (the PCs restarted at {at})"),
    "line": Words(
        " (các máy vẫn chạy và đo được {reports} báo cáo trong lúc mất kết nối)",
        " (the PCs kept running and measured {reports} reports meanwhile)",
    ),
    "office_closed": Words(" ({why})", " ({why})"),
    "unknown": Words(" ({why})", " ({why})"),
}


def loss_reason(loss_percent: float, rtt_ms: float) -> Words:
    """A degraded line's measured packet loss and round-trip time."""
    return Words(
        f"mất gói {loss_percent:.1f}%, độ trễ {rtt_ms:.0f} ms", f"loss {loss_percent:.1f}%, rtt {rtt_ms:.0f} ms"
    )


def speed_reason(percent_of_contract: float) -> Words:
    """A degraded line's slowest speed test against its contract."""
    return Words(f"tốc độ {percent_of_contract:.0f}% hợp đồng", f"speed {percent_of_contract:.0f}% of contract")


# ---- why a PC is degraded ----

DEGRADED_REASONS: Final[dict[str, Words]] = {
    "disk_full": Words("ổ đĩa gần đầy", "disk nearly full"),
    "memory_pressure": Words("thiếu bộ nhớ", "short of memory"),
    "cpu_pegged": Words("CPU quá tải kéo dài", "CPU saturated for long"),
    "temperature_high": Words("nhiệt độ cao", "running hot"),
    "frequent_reboots": Words("khởi động lại nhiều lần", "rebooting often"),
    "report_gaps": Words("treo máy / mất báo cáo", "freezing or missing reports"),
    # a failed S.M.A.R.T. verdict, bad sectors above [fleet] disk_bad_sectors, or I/O errors rising
    "disk_failing": Words("ổ đĩa sắp hỏng", "disk failing"),
    # the system disk busy above [fleet] disk_busy_percent for [fleet] disk_slow_minutes: the PC hangs
    "disk_slow": Words("ổ đĩa quá chậm gây treo máy", "disk so slow the PC hangs"),
    "spool_failed": Words("không ghi được hàng đợi báo cáo", "report spool cannot be written"),
    "old_hardware": Words("phần cứng cũ", "old hardware"),
    "too_many_series": Words("gửi quá nhiều chuỗi số liệu mới", "sending too many new series"),
}


# ---- the replacement list (collector/reports/replacement.py, GET /api/v1/replacement) ----

REPLACEMENT_TITLE: Final = Words("Máy cần thay thế", "PCs to replace")
REPLACEMENT_EVIDENCE: Final[dict[str, Words]] = {  # the score's parts, in its order
    "disk_failing": Words("ổ đĩa sắp hỏng", "disk failing"),
    "hang_minutes_per_day": Words("phút treo máy mỗi ngày làm việc", "hang minutes per office day"),
    "memory_short": Words("tỉ lệ thời gian thiếu bộ nhớ", "share of time short of memory"),
    "cpu_saturated": Words("tỉ lệ thời gian CPU quá tải", "share of time with the CPU saturated"),
    "reboots_per_day": Words("số lần khởi động lại mỗi ngày làm việc", "reboots per office day"),
    "age_years": Words("tuổi máy (năm, từ lần đầu giám sát)", "age in years (since first monitored)"),
}
REPLACEMENT_RULE: Final = Words(
    "Điểm từ 0 đến 100, đo trong giờ làm việc của tháng: ổ đĩa sắp hỏng 40; treo máy 25 (đủ từ 60 phút mỗi ngày); "
    "thiếu bộ nhớ 10 và CPU quá tải 10 (theo tỉ lệ thời gian); khởi động lại 5 (đủ từ 1 lần mỗi ngày); "
    "tuổi máy 10 (đủ từ 8 năm).",
    "A score from 0 to 100, measured in the month's office hours: disk failing 40; hangs 25 (in full from 60 "
    "minutes a day); short of memory 10 and CPU saturated 10 (by share of time); reboots 5 (in full from one a "
    "day); age 10 (in full from 8 years).",
)


def degraded_reasons(codes: tuple[str, ...], lang: str) -> str:
    """A degraded PC's reason codes in words, comma-separated."""
    return ", ".join(DEGRADED_REASONS[code].in_(lang) for code in codes)


def degraded_reasons_en_with_codes(codes: tuple[str, ...]) -> str:
    """In English words, each followed by its code (``disk nearly full (disk_full)``), for the
    English dashboard, where people filter and search by code."""
    return ", ".join(with_code(DEGRADED_REASONS[code].en, code) for code in codes)


def with_code(text: str, code: str) -> str:
    """Words, then the code they stand for in brackets, as a reference."""
    return f"{text} ({code})"


# ---- alert rules and severities ----

HOST_OFFLINE: Final = "host_offline"
LINE_DOWN: Final = "line_down"
LINE_DEGRADED: Final = "line_degraded"
HOST_DEGRADED: Final = "host_degraded"
LINE_UNUSED: Final = "line_unused"
EQUIPMENT_UNUSED: Final = "equipment_unused"

RULES: Final[dict[str, Words]] = {
    HOST_OFFLINE: Words("Máy mất kết nối", "Host offline"),
    LINE_DOWN: Words("Mất kết nối đường truyền", "Line down"),
    LINE_DEGRADED: Words("Đường truyền kém", "Line degraded"),
    HOST_DEGRADED: Words("Máy xuống cấp", "Host degraded"),
    LINE_UNUSED: Words("Đường truyền không được sử dụng", "Line unused"),
    EQUIPMENT_UNUSED: Words("Thiết bị được cấp không được sử dụng", "Issued equipment unused"),
}
RULE_SEVERITY: Final[dict[str, str]] = {
    HOST_OFFLINE: "critical",
    LINE_DOWN: "critical",
    LINE_DEGRADED: "warning",
    HOST_DEGRADED: "warning",
    LINE_UNUSED: "info",
    EQUIPMENT_UNUSED: "info",
}
SEVERITIES: Final[dict[str, Words]] = {
    "critical": Words("Nghiêm trọng", "Critical"),
    "warning": Words("Cảnh báo", "Warning"),
    "info": Words("Thông tin", "Information"),
}

# What an alert says; {name} is the commune's official name, {host} the PC, {why} the reasons in
# words (each line reason's code follows its English words in brackets, see ``line_reason_en``).
SUMMARIES: Final[dict[str, Words]] = {
    LINE_DOWN: Words("Mất kết nối đường truyền tại {name} ({why})", "Line down at {name}: {why}"),
    LINE_DEGRADED: Words("Đường truyền kém tại {name}: {why}", "Line degraded at {name}: {why}"),
    LINE_UNUSED: Words("Đường truyền không được sử dụng tại {name} ({why})", "Line unused at {name}: {why}"),
    HOST_OFFLINE: Words("Máy {host} tại {name} mất kết nối", "Host {host} at {name} is offline"),
    HOST_DEGRADED: Words("Máy {host} tại {name}: {why}", "Host {host} at {name}: {why}"),
    # {count} items of {kind} (the kind's words below), {days} the window
    EQUIPMENT_UNUSED: Words(
        "{name}: {count} {kind} được cấp chưa được sử dụng {days} ngày",
        "{name}: {count} issued {kind} not used for {days} days",
    ),
}


def line_reason_en(reason: str) -> str:
    """A line reason in English: its words, then its code in brackets as a reference to what the
    API's ``line_reasons`` lists; a measured reason (``loss 6.0%, rtt 40 ms``) is English already."""
    words = LINE_REASONS.get(reason)
    return with_code(words.en, reason) if words else reason


# ---- issued equipment (scanners, digital-signature tokens) ----

PERIPHERAL_KINDS: Final[dict[str, Words]] = {  # the wire's kinds; English plural for counts
    "scanner": Words("máy quét", "scanner(s)"),
    "token": Words("chữ ký số", "digital-signature token(s)"),
    "printer": Words("máy in", "printer(s)"),
    "other": Words("thiết bị khác", "other device(s)"),
}
EQUIPMENT_STATES: Final[dict[str, Words]] = {
    "in_use": Words("Đang sử dụng", "In use"),
    "plugged_idle": Words("Cắm nhưng không được mở", "Plugged in, never opened"),
    "unused": Words("Không sử dụng", "Unused"),
    "never_seen": Words("Chưa từng kết nối", "Never seen"),
    "not_yet_seen": Words("Mới cấp, chưa kết nối", "Newly issued, not seen yet"),
    "unregistered": Words("Không có trong danh sách cấp", "Not issued (unregistered)"),
}
# Which rule judged an item's state (collector/fleet/equipment.py).
EQUIPMENT_RULES: Final[dict[str, Words]] = {
    "presence": Words("Theo việc cắm vào máy", "By presence (plugged in)"),
    "pcsc": Words("Theo việc phần mềm mở thẻ (PC/SC)", "By observed use (opened by an application, PC/SC)"),
}


# ---- notifications ----

NOTIFY: Final[dict[str, Words]] = {
    "firing": Words("CẢNH BÁO", "FIRING"),
    "resolved": Words("ĐÃ KHẮC PHỤC", "RESOLVED"),
    "cause": Words("NGUYÊN NHÂN", "CAUSE"),  # the follow-up once an outage's cause is decided
    "subject": Words(
        "[Giám sát xã] {area}: {firing} cảnh báo, {resolved} đã khắc phục",
        "[commune-monitor] {area}: {firing} firing, {resolved} resolved",
    ),
    "area": Words("Khu vực", "Area"),
}

# ---- the status page (Vietnamese only: it is for commune and area staff) ----

STATUS_LEVELS: Final[dict[str, Words]] = {  # worst first
    "red": Words("Sự cố", "Problem"),
    "amber": Words("Cần chú ý", "Needs attention"),
    "green": Words("Bình thường", "Normal"),
}
STATUS_PAGE: Final[dict[str, Words]] = {
    "title": Words("Tình trạng hệ thống", "System status"),
    "no_data": Words("chưa có dữ liệu", "no data yet"),
    "communes": Words("xã", "communes"),
    "updated": Words("cập nhật", "updated"),
    "commune": Words("Xã/phường", "Commune"),
    "line": Words("Đường truyền", "Line"),
    "hosts_online": Words("Máy hoạt động", "PCs online"),
    "hosts_degraded": Words("Máy xuống cấp", "PCs degraded"),
    "equipment": Words("Thiết bị cấp / đang dùng / không dùng", "Equipment issued / in use / unused"),
    "no_equipment": Words("chưa có", "none"),
    "misbehaving": Words(
        "Máy gửi quá nhiều chuỗi số liệu mới (phần vượt giới hạn bị bỏ)",
        "PCs sending too many new series (those beyond the bound are dropped)",
    ),
    "other_devices": Words(
        "Thiết bị chưa nhận ra (thêm dòng cho chúng bằng registry import-known-ids)",
        "Devices not recognised (add rows for them with registry import-known-ids)",
    ),
    "usb_id": Words("Mã USB", "USB id"),
    "model": Words("Tên thiết bị", "Model"),
    "seen_in": Words("Thấy ở xã", "Seen in communes"),
    "more_devices": Words("thiết bị khác không hiện", "more devices not shown"),
    "area": Words("Khu vực", "Area"),
    "level": Words("Tình trạng", "State"),
    "all": Words("Tất cả", "All"),
    "filter": Words("Lọc", "Filter"),
    "page": Words("Trang", "Page"),
    "previous": Words("Trang trước", "Previous page"),
    "next": Words("Trang sau", "Next page"),
    "shown": Words("xã đang hiện", "communes shown"),
    "of": Words("trên", "of"),
    "none_match": Words("Không có xã nào như vậy", "No commune matches"),
    "no_such_page": Words(
        "Không có trang này: các xã đã chọn không đủ nhiều trang", "No such page: the communes chosen fill fewer pages"
    ),
    "first_page": Words("Về trang đầu", "Back to the first page"),
}

# ---- the web console (collector/http/console/): Vietnamese first, English on a switch ----

CONSOLE: Final[dict[str, Words]] = {
    "title": Words("Bảng điều khiển", "Console"),
    "fleet": Words("Toàn tỉnh", "Fleet"),
    "alerts": Words("Cảnh báo", "Alerts"),
    "silences": Words("Tạm tắt cảnh báo", "Silences"),
    "enroll_keys": Words("Khóa đăng ký máy", "Enrolment keys"),
    "imports": Words("Nhập danh sách", "Upload lists"),
    "sign_in": Words("Đăng nhập", "Sign in"),
    "sign_out": Words("Đăng xuất", "Sign out"),
    "token": Words("Mã truy cập (API token)", "API token"),
    "signed_in_as": Words("Đăng nhập với", "Signed in as"),
    "role_viewer": Words("chỉ xem", "viewer"),
    "role_admin": Words("quản trị", "admin"),
    "viewer_note": Words(
        "Mã của bạn chỉ được xem; cần mã quản trị để thao tác.",
        "Your token may only view; acting needs an admin token.",
    ),
    "filter": Words("Lọc", "Filter"),
    "search": Words("Tên hoặc mã xã", "Commune name or code"),
    "all_levels": Words("Mọi trạng thái", "Every state"),
    "all_areas": Words("Mọi khu vực", "Every area"),
    "page": Words("Trang", "Page"),
    "area": Words("Khu vực", "Area"),
    "commune": Words("Xã/phường", "Commune"),
    "state": Words("Trạng thái", "State"),
    "none": Words("Không có", "None"),
    "no_match": Words("Không có xã nào khớp bộ lọc.", "No commune matches the filter."),
    "pcs": Words("Máy tính", "PCs"),
    "host": Words("Máy", "PC"),
    "online": Words("Hoạt động", "Online"),
    "offline": Words("Mất kết nối", "Offline"),
    "reasons": Words("Lý do", "Reasons"),
    "last_report": Words("Báo cáo gần nhất", "Last report"),
    "ago_s": Words("{n} giây trước", "{n} s ago"),
    "ago_min": Words("{n} phút trước", "{n} min ago"),
    "ago_h": Words("{n} giờ trước", "{n} h ago"),
    "ago_d": Words("{n} ngày trước", "{n} days ago"),
    "line": Words("Đường truyền", "Line"),
    "isp": Words("Nhà mạng", "ISP"),
    "circuit": Words("Mã đường truyền", "Circuit"),
    "contract": Words("Tốc độ hợp đồng", "Contracted speed"),
    "measured": Words("Tốc độ đo (7 ngày)", "Measured speed (7 days)"),
    "of_contract": Words("so với hợp đồng", "of the contract"),
    "no_line": Words("Chưa đăng ký đường truyền.", "No line registered."),
    "no_speedtest": Words("chưa có lần đo", "no measurement yet"),
    "outages": Words("Lần mất kết nối gần đây", "Latest outages"),
    "start": Words("Bắt đầu", "Start"),
    "end": Words("Kết thúc", "End"),
    "cause": Words("Nguyên nhân", "Cause"),
    "ongoing": Words("đang diễn ra", "ongoing"),
    "undecided": Words("chưa xác định", "not decided yet"),
    "equipment": Words("Thiết bị được cấp", "Issued equipment"),
    "kind": Words("Loại", "Kind"),
    "model": Words("Tên thiết bị", "Model"),
    "serial": Words("Số sê-ri", "Serial"),
    "holder": Words("Người giữ", "Holder"),
    "other_devices": Words("Thiết bị chưa nhận ra", "Devices of unknown kind"),
    "usb_id": Words("Mã USB", "USB id"),
    "open_alerts": Words("Cảnh báo đang mở", "Open alerts"),
    "charts": Words("7 ngày qua", "The last 7 days"),
    "chart_online": Words("Số máy hoạt động", "PCs online"),
    "chart_speed": Words("Tốc độ tải xuống (Mb/s)", "Download speed (Mb/s)"),
    "chart_rtt": Words("Độ trễ trung bình (ms)", "Mean round trip (ms)"),
    "chart_loss": Words("Mất gói (%)", "Packet loss (%)"),
    "no_history": Words("Chưa có số liệu", "No data yet"),
    "history_unavailable": Words("Không đọc được số liệu từ InfluxDB", "The history cannot be read from InfluxDB"),
    "actions": Words("Kiểm tra ngay", "Test now"),
    "severity": Words("Mức độ", "Severity"),
    "summary": Words("Nội dung", "Summary"),
    "since": Words("Từ lúc", "Since"),
    "acked": Words("Đã nhận xử lý", "Acknowledged"),
    "ack": Words("Nhận xử lý", "Acknowledge"),
    "comment": Words("Ghi chú", "Comment"),
    "no_alerts": Words("Không có cảnh báo nào đang mở.", "No alert is open."),
    "silence_new": Words("Tạm tắt cảnh báo từ bây giờ", "Silence alerts from now"),
    "window_new": Words("Lịch bảo trì (khoảng thời gian sắp tới)", "Maintenance window (a coming period)"),
    "hours": Words("Số giờ", "Hours"),
    "rule": Words("Loại cảnh báo", "Alert rule"),
    "any": Words("(bất kỳ)", "(any)"),
    "matches": Words("Áp dụng cho", "Applies to"),
    "author": Words("Người tạo", "By"),
    "create": Words("Tạo", "Create"),
    "end_now": Words("Kết thúc ngay", "End now"),
    "in_force": Words("Đang áp dụng", "In force"),
    "scheduled": Words("Sắp tới", "Scheduled"),
    "no_silences": Words("Không có lệnh tạm tắt nào.", "No silence."),
    "daily_windows": Words("Lịch bảo trì hằng ngày (trong tệp cấu hình)", "Daily maintenance windows (in the config)"),
    "time": Words("Giờ", "Time"),
    "key_new": Words("Tạo khóa đăng ký", "Make an enrolment key"),
    "expiry": Words("Hết hạn sau (vd 30d, 12h, 90m)", "Expires after (e.g. 30d, 12h, 90m)"),
    "max_hosts": Words("Số máy tối đa (để trống: không giới hạn)", "Most PCs (empty: no limit)"),
    "uses": Words("Đã đăng ký", "Used by"),
    "expires": Words("Hết hạn", "Expires"),
    "created": Words("Tạo lúc", "Made"),
    "revoke": Words("Thu hồi", "Revoke"),
    "revoked": Words("Đã thu hồi", "Revoked"),
    "expired": Words("Đã hết hạn", "Expired"),
    "valid": Words("Còn hiệu lực", "Valid"),
    "no_keys": Words("Chưa có khóa nào.", "No key yet."),
    "key_shown_once": Words(
        "Khóa mới (chỉ hiện một lần, hãy chép lại ngay):", "The new key (shown only once: copy it now):"
    ),
    "list_kind": Words("Loại danh sách", "List"),
    "kind_lines": Words("Đường truyền", "Lines"),
    "kind_areas": Words("Khu vực", "Areas"),
    "kind_equipment": Words("Thiết bị được cấp", "Issued equipment"),
    "file": Words("Tệp CSV hoặc XLSX", "CSV or XLSX file"),
    "preview": Words("Xem trước", "Preview"),
    "columns": Words("Các cột cần có", "Columns needed"),
    "bad_rows": Words(
        "Tệp có dòng sai: chưa nhập gì. Sửa các dòng dưới đây rồi tải lên lại.",
        "The file has bad rows: nothing was imported. Fix the rows below and upload it again.",
    ),
    "good_file": Words("Tệp hợp lệ: {n} dòng sẵn sàng để nhập.", "The file is right: {n} rows ready to import."),
    "more_rows": Words("… và {n} dòng nữa (đều đã được kiểm tra)", "… and {n} more rows (every one checked)"),
    "confirm": Words("Xác nhận nhập toàn bộ", "Confirm: import all of it"),
    "cancel": Words("Hủy", "Cancel"),
    "imported": Words("Đã nhập {n} dòng từ {name}.", "{n} rows imported from {name}."),
    "done": Words("Đã lưu.", "Saved."),
    "refused": Words("Không thực hiện được", "Not done"),
    "back": Words("Quay lại", "Back"),
    "language": Words("English", "Tiếng Việt"),  # the switch names the other language
    # refusals: each says what failed and what to do
    "err_token": Words(
        "Mã truy cập không đúng hoặc đã bị thu hồi. Kiểm tra lại mã rồi đăng nhập lại.",
        "This API token is not known or was revoked. Check it and sign in again.",
    ),
    "err_too_many": Words(
        "Quá nhiều lần nhập sai mã truy cập từ máy này: thử lại sau {seconds} giây.",
        "Too many wrong tokens from this address: try again in {seconds} s.",
    ),
    "err_csrf": Words(
        "Biểu mẫu thiếu mã chống giả mạo (CSRF) hoặc mã đã cũ: không có gì thay đổi. Mở lại trang rồi gửi lại.",
        "The form's CSRF token is missing or stale: nothing was changed. Open the page again and resend it.",
    ),
    "err_signed_out": Words(
        "Phiên đăng nhập đã hết hoặc chưa đăng nhập: không có gì thay đổi. Hãy đăng nhập lại.",
        "You are not signed in (or the session ended): nothing was changed. Sign in again.",
    ),
    "err_viewer": Words(
        "Mã truy cập này chỉ được xem: không có gì thay đổi. Cần đăng nhập bằng mã quản trị.",
        "This token may only view: nothing was changed. Sign in with an admin token.",
    ),
    "err_unknown_commune": Words(
        "Không có xã/phường mã {code} trong hệ thống (chưa có máy, đường truyền hay thiết bị).",
        "There is no commune {code} here (no PC, line or equipment).",
    ),
    "err_unknown_pc": Words(
        "Không có máy {host} ở xã/phường {code}: không có gì được gửi.",
        "There is no PC {host} in {code}: nothing was sent.",
    ),
    "err_unknown_action": Words(
        "Không có thao tác {name}: chỉ có đo tốc độ, kiểm tra kết nối, kiểm kê và thiết bị USB.",
        "There is no action {name}: only a speed test, probes, inventory and USB devices.",
    ),
    "err_unknown_request": Words("Không có yêu cầu {id} cho xã/phường này.", "No request {id} for this commune."),
    "err_broker_down": Words(
        "Không gửi được yêu cầu tới MQTT broker: không có gì được gửi. Thử lại sau ít phút.",
        "The MQTT broker cannot take the request: nothing was sent. Try again in a few minutes.",
    ),
    "err_unknown_alert": Words(
        "Không có cảnh báo đang mở số {id}: có thể đã được khắc phục.", "No open alert {id}: it may have resolved."
    ),
    "err_unknown_silence": Words("Không có lệnh tạm tắt số {id} đang áp dụng.", "No silence {id} in force."),
    "err_unknown_key": Words("Không có khóa đăng ký số {id} còn hiệu lực.", "No valid enrolment key {id}."),
    "err_unknown_area": Words(
        "Không có khu vực {area}: hãy nhập danh sách khu vực trước.", "There is no area {area}: upload the areas first."
    ),
    "err_expiry": Words(
        "Thời hạn {value} không đúng: ghi một số và đơn vị, vd 30d, 12h hoặc 90m.",
        "Expiry {value} is not right: a number and a unit, e.g. 30d, 12h or 90m.",
    ),
    "err_max_hosts": Words("Số máy tối đa phải là số nguyên dương.", "The most PCs must be a whole number above 0."),
    "err_silence_scope": Words(
        "Cần chọn ít nhất một trong: khu vực, xã, máy, loại cảnh báo; giá trị phải hợp lệ.",
        "Choose at least one of area, commune, PC or rule, each a valid value.",
    ),
    "err_hours": Words(
        "Số giờ phải lớn hơn 0 và không quá 2160 (90 ngày).", "Hours must be above 0 and at most 2160 (90 days)."
    ),
    "err_window": Words(
        "Thời gian không đúng: bắt đầu và kết thúc dạng 2026-12-24 08:00, kết thúc sau bắt đầu, không quá 90 ngày.",
        "The times are not right: start and end like 2026-12-24 08:00, the end after the start, at most 90 days.",
    ),
    "err_no_file": Words("Chưa chọn tệp, hoặc tệp rỗng.", "No file was chosen, or it is empty."),
    "err_kind": Words("Loại danh sách không đúng.", "That kind of list is not known."),
    "err_pending": Words(
        "Bản xem trước này không còn (đã nhập, đã hủy hoặc quá 30 phút): không có gì được nhập. Hãy tải tệp lên lại.",
        "This preview is gone (imported, cancelled or older than 30 minutes): nothing was imported. Upload again.",
    ),
    "err_state": Words(
        "Không ghi được tệp trạng thái của bộ thu: không có gì thay đổi. Thử lại sau.",
        "The collector's state file cannot be written: nothing was changed. Try again later.",
    ),
    "err_comment": Words("Ghi chú dài quá 500 ký tự.", "The comment is longer than 500 characters."),
}

# ---- a registry list's bad rows (collector/registry/csv_import.py) ----
# The CLI prints the English, the console the chosen language. {at} is the row ("line 3" of a CSV,
# "row 3" of a sheet, "dòng 3"), {first} an earlier row said the same way.

IMPORT_UNITS: Final[dict[str, Words]] = {"line": Words("dòng", "line"), "row": Words("dòng", "row")}
IMPORT_PROBLEMS: Final[dict[str, Words]] = {
    "unreadable": Words("không đọc được tệp: {error}", "cannot read the file: {error}"),
    "not_csv": Words("không đọc được tệp như CSV UTF-8: {error}", "cannot read the file as UTF-8 CSV: {error}"),
    "not_xlsx": Words(
        "không đọc được tệp như bảng tính XLSX: {error}", "cannot read the file as an XLSX workbook: {error}"
    ),
    "missing_columns": Words(
        "{at}: thiếu cột {missing}; cần các cột {columns}", "{at}: missing column(s) {missing}; expected {columns}"
    ),
    "too_many_rows": Words("nhiều hơn {most} dòng; hãy chia nhỏ tệp", "more than {most} rows; split the file"),
    "commune_unknown": Words(
        "{at}: mã xã {raw} không phải mã xã/phường chính thức", "{at}: commune {raw} is not an official commune code"
    ),
    "speed": Words(
        "{at}: {column} = {raw} phải là số Mb/s lớn hơn 0", "{at}: {column} = {raw} must be a number of Mb/s above 0"
    ),
    "circuit_bad": Words(
        "{at}: circuit_id {raw} phải gồm 1-64 chữ cái, chữ số, '_', '.', ':' hoặc '-'",
        "{at}: circuit_id {raw} must be 1-64 letters, digits, '_', '.', ':' or '-'",
    ),
    "circuit_twice": Words("{at}: circuit_id {raw} đã có ở {first}", "{at}: circuit_id {raw} already on {first}"),
    "isp_length": Words("{at}: isp phải dài 1 đến 64 ký tự", "{at}: isp must be 1 to 64 characters"),
    "installed_on": Words(
        "{at}: installed_on {raw} phải là ngày dạng 2025-07-01",
        "{at}: installed_on {raw} must be a date like 2025-07-01",
    ),
    "area_code_bad": Words(
        "{at}: area_code {raw} phải gồm 1-64 chữ cái, chữ số, '_', '.', ':' hoặc '-'",
        "{at}: area_code {raw} must be 1-64 letters, digits, '_', '.', ':' or '-'",
    ),
    "area_name_length": Words(
        "{at}: area_name phải dài 1 đến 100 ký tự", "{at}: area_name must be 1 to 100 characters"
    ),
    "area_renamed": Words(
        "{at}: khu vực {raw} đã có tên {name} ở một dòng trước", "{at}: area {raw} is named {name} on an earlier line"
    ),
    "commune_twice": Words(
        "{at}: xã {code} đã được gán khu vực ở {first}", "{at}: commune {code} is already assigned on {first}"
    ),
    "issued_on": Words(
        "{at}: issued_on {raw} phải là ngày dạng 2025-07-01", "{at}: issued_on {raw} must be a date like 2025-07-01"
    ),
    "issued_future": Words(
        "{at}: issued_on {raw} là ngày trong tương lai (hôm nay là {today})",
        "{at}: issued_on {raw} is in the future (today is {today})",
    ),
    "kind_bad": Words("{at}: kind {raw} phải là một trong {kinds}", "{at}: kind {raw} must be one of {kinds}"),
    "model_length": Words("{at}: model phải dài 1 đến 100 ký tự", "{at}: model must be 1 to 100 characters"),
    "serial_length": Words(
        "{at}: serial dài tối đa 64 ký tự (để trống nếu không có)",
        "{at}: serial must be at most 64 characters (or empty when there is none)",
    ),
    "serial_twice": Words(
        "{at}: {kind} số sê-ri {raw} đã có ở {first}", "{at}: {kind} serial {raw} already on {first}"
    ),
    "holder_length": Words(
        "{at}: holder phải dài 1 đến 100 ký tự (một người, hoặc bộ phận, vd Một cửa)",
        "{at}: holder must be 1 to 100 characters (a person, or the desk, e.g. Một cửa)",
    ),
    "host_refused": Words("{at}: {text}", "{at}: {text}"),
    "host_twice": Words(
        "{at}: máy {raw} của xã {commune} cũng có ở {first}", "{at}: host {raw} of commune {commune} is on {first} too"
    ),
    "host_enrolled": Words(
        "{at}: máy {raw} của xã {commune} đã được đăng ký", "{at}: host {raw} of commune {commune} is enrolled already"
    ),
    "no_hosts": Words("tệp không có máy nào", "no hosts in the file"),
}

# ---- the Grafana dashboards ----

DASHBOARD: Final[dict[str, Words]] = {
    "overview": Words("Tổng quan tỉnh", "Province overview"),
    "degraded": Words("Thiết bị xuống cấp", "Degraded equipment"),
    "unused": Words("Đường truyền không sử dụng", "Unused connections"),
    "line": Words("Chất lượng đường truyền theo xã", "Line quality per commune"),
    "host": Words("Chi tiết máy", "Host detail"),
    "province": Words("Tỉnh", "Province"),
    "area": Words("Khu vực", "Area"),
    "commune": Words("Xã/phường", "Commune"),
    "commune_code": Words("Mã xã", "Commune code"),
    "host_name": Words("Máy", "Host"),
    "rp": Words("Độ phân giải", "Resolution"),
    "rp_raw": Words("Chi tiết (30 ngày)", "Raw (30 days)"),
    "rp_rollup": Words("Trung bình 5 phút (400 ngày)", "5-minute means (400 days)"),
    "lines_down": Words("Xã mất kết nối", "Communes with line down"),
    "hosts_online": Words("Máy đang hoạt động", "Hosts online"),
    "hosts_offline": Words("Máy mất kết nối", "Hosts offline"),
    "hosts_degraded": Words("Máy xuống cấp", "Degraded PCs"),
    "lines_unused": Words("Đường truyền không dùng", "Unused lines"),
    "grid": Words("Trạng thái đường truyền các xã", "Line state per commune"),
    "problems": Words("Các xã, vấn đề trước", "Communes, problems first"),
    "line_state": Words("Đường truyền", "Line"),
    "online_total": Words("Máy hoạt động", "Hosts online"),
    "total": Words("Tổng số máy", "Hosts"),
    "online_trend": Words("Số máy hoạt động theo thời gian", "Hosts online over time"),
    "reasons": Words("Lý do", "Reasons"),
    "since": Words("Từ lúc", "Since"),
    "online": Words("Trực tuyến", "Online"),
    "yes": Words("Có", "Yes"),
    "no": Words("Không", "No"),
    "open_host": Words("Xem chi tiết máy", "Open host detail"),
    "open_line": Words("Xem chất lượng đường truyền", "Open line quality"),
    "days_unused": Words("Số ngày không dùng", "Days unused"),
    "contracted": Words("Tốc độ hợp đồng (Mb/s)", "Contracted (Mb/s)"),
    "traffic": Words("Lưu lượng TB (MB/ngày)", "Mean traffic (MB/day)"),
    "last_traffic": Words("Lần cuối có lưu lượng", "Last traffic"),
    "why": Words("Vì sao", "Why"),
    "rtt": Words("Độ trễ trung bình (ms)", "Mean round-trip time (ms)"),
    "loss": Words("Tỉ lệ mất gói (%)", "Packet loss (%)"),
    "probe_ok": Words("Tỉ lệ thăm dò thành công", "Probe success rate"),
    "speed": Words("Đo tốc độ so với hợp đồng (Mb/s)", "Speed tests against contract (Mb/s)"),
    "speed_percent": Words("Tốc độ tải xuống / hợp đồng", "Download / contract"),
    "rtt_30d": Words("Độ trễ 30 ngày (trung bình 5 phút)", "Round-trip time, 30 days (5-minute means)"),
    "outages": Words("Mất kết nối và nguyên nhân", "Outages and their causes"),
    "outage_start": Words("Bắt đầu", "Started"),
    "outage_cause": Words("Nguyên nhân", "Cause"),
    "outage_duration": Words("Thời gian", "Duration"),
    "cpu": Words("CPU (%)", "CPU (%)"),
    "memory": Words("Bộ nhớ và swap (%)", "Memory and swap (%)"),
    "disk": Words("Ổ đĩa đã dùng (%)", "Disk used (%)"),
    "temperature": Words("Nhiệt độ (°C)", "Temperatures (°C)"),
    "network": Words("Mạng (byte/s)", "Network (bytes/s)"),
    "uptime": Words("Thời gian chạy", "Uptime"),
    "ram": Words("RAM", "RAM"),
    "inventory": Words("Cấu hình phần cứng", "Hardware inventory"),
    "agent": Words("Agent: hàng đợi gửi và bộ nhớ", "Agent: spool depth and memory"),
    "os": Words("Hệ điều hành", "OS"),
    "cpu_model": Words("CPU", "CPU"),
    "cores": Words("Số nhân", "Cores"),
    "disk_total": Words("Tổng dung lượng đĩa", "Disk total"),
    "agent_version": Words("Phiên bản agent", "Agent version"),
    "dashboards": Words("Bảng điều khiển", "Dashboards"),
    "peripherals": Words("Thiết bị ngoại vi", "Peripherals"),
    "kind": Words("Loại thiết bị", "Kind"),
    "issued": Words("Được cấp", "Issued"),
    "seen": Words("Đang dùng", "In use"),
    "idle": Words("Cắm không dùng / không dùng / chưa từng kết nối", "Plugged idle / unused / never seen"),
    "plugged_idle": Words("Cắm nhưng không được mở", "Plugged in, never opened"),
    "never_seen": Words("Chưa từng kết nối", "Never seen"),
    "unregistered": Words("Ngoài danh sách cấp", "Not issued"),
    "issued_vs_seen": Words("Thiết bị cấp và đang dùng theo xã", "Issued vs in use per commune"),
    "idle_items": Words(
        "Thiết bị cắm không dùng, không dùng và chưa từng kết nối (người giữ, số ngày)",
        "Plugged-idle, unused and never-seen items (holder, days)",
    ),
    "items": Words("Thiết bị (người giữ, mẫu): trạng thái, số ngày", "Items (holder, model): state, days"),
    "token_use": Words("Chữ ký số: số phút cắm mỗi ngày", "Digital-signature tokens: minutes plugged in per day"),
}

# The two alert rules provisioned in Grafana: title, summary and description; {{ $labels.* }} are
# Grafana's. A title shows both languages ("vi / en"), a description both sentences.
GRAFANA_ALERTS: Final[dict[str, dict[str, Words]]] = {
    "cm-line-down": {
        "title": Words("Mất kết nối đường truyền xã", "Commune line down"),
        "summary": Words(
            "Xã {{ $labels.commune }} mất kết nối đường truyền", "Commune {{ $labels.commune }} line down"
        ),
        "description": Words(
            "Đường truyền của xã {{ $labels.commune }} (khu vực {{ $labels.area }}) không hoạt động.",
            "Line of commune {{ $labels.commune }} (area {{ $labels.area }}) is down.",
        ),
    },
    "cm-host-offline": {
        "title": Words("Máy mất kết nối", "Host offline"),
        "summary": Words(
            "Máy {{ $labels.host }} tại xã {{ $labels.commune }} mất kết nối",
            "Host {{ $labels.host }} at commune {{ $labels.commune }} offline",
        ),
        "description": Words(
            "Máy {{ $labels.host }} tại xã {{ $labels.commune }} không gửi báo cáo.",
            "Host {{ $labels.host }} at commune {{ $labels.commune }} stopped reporting.",
        ),
    },
}


# ---- the monthly report (collector/reports/) ----

REPORT: Final[dict[str, Words]] = {
    "title": Words("Báo cáo chuyển đổi số cấp xã tháng {month}", "Commune digital transformation report, {month}"),
    "scope_all": Words("Toàn tỉnh", "Whole province"),
    "scope_area": Words("Khu vực: {area}", "Area: {area}"),
    "office_hours": Words(
        "Tính trong giờ hành chính: {windows}, {days}; {office_days} ngày làm việc{until}.",
        "Counted in office hours only: {windows}, {days}; {office_days} working days{until}.",
    ),
    "until": Words(" (đến {date})", " (up to {date})"),
    "workdays": Words("thứ {days}", "{days}"),
    "generated": Words("Lập lúc {time}", "Made at {time}"),
    "summary": Words("Tóm tắt", "Summary"),
    "per_area": Words("Theo khu vực", "By area"),
    "per_commune": Words("Theo xã (kém nhất trước)", "By commune (worst first)"),
    "lists": Words("Danh sách cần xử lý", "Lists to act on"),
    "charts": Words("Biểu đồ", "Charts"),
    "figure": Words("Chỉ số", "Figure"),
    "value": Words("Tháng này", "This month"),
    "change": Words("So với tháng trước", "Change from last month"),
    "communes": Words("Số xã", "Communes"),
    "pcs": Words("Số máy", "PCs"),
    "line_availability": Words("Đường truyền sẵn sàng (%)", "Line availability (%)"),
    "pc_availability": Words("Máy hoạt động (%)", "PC availability (%)"),
    "unused_communes": Words("Xã có ngày không dùng đường truyền", "Communes with days the line was unused"),
    "degraded_pcs": Words("Máy suy giảm", "Degraded PCs"),
    "equipment_issued": Words("Thiết bị đã cấp", "Equipment issued"),
    "equipment_in_use": Words("Thiết bị đang dùng", "Equipment in use"),
    "equipment_idle": Words("Không dùng", "Not in use"),
    "plugged_idle": Words("cắm nhưng không được mở", "plugged in, never opened"),
    "judged_pcsc": Words("xét theo PC/SC", "judged by PC/SC"),
    "equipment_kinds": Words("Theo loại (đang dùng/đã cấp)", "By kind (in use/issued)"),
    "per_commune_equipment": Words(
        "Thiết bị cấp phát và đang dùng theo xã (cuối tháng; đang dùng: cắm vào máy trong {days} ngày qua, "
        "với chữ ký số trên máy có PC/SC: được phần mềm mở; cắm mà không được mở tính là không dùng)",
        "Equipment issued and in use by commune (at the month's end; in use: plugged in within {days} days, "
        "and for a token on a PC with PC/SC: opened by an application; plugged in but never opened counts as idle)",
    ),
    "no_data_yet": Words("chưa có dữ liệu", "no data yet"),
    "area": Words("Khu vực", "Area"),
    "commune": Words("Xã", "Commune"),
    "speed_percent": Words("Tốc độ (% hợp đồng, trung vị)", "Speed (% of contract, median)"),
    "unused_days": Words("Ngày không dùng", "Days unused"),
    "pcs_online": Words("Máy có hoạt động", "PCs online"),
    "pcs_total": Words("Tổng số máy", "PCs in all"),
    "degraded_reasons": Words("Máy suy giảm (lý do)", "Degraded PCs (reasons)"),
    "alerts": Words("Cảnh báo (số lần)", "Alerts fired"),
    "alert_hours": Words("Giờ cảnh báo mở", "Hours alerts open"),
    "score": Words("Điểm", "Score"),
    "rank": Words("Hạng (thay đổi)", "Rank (change)"),
    "down_hours": Words("Giờ mất kết nối", "Hours down"),
    "host": Words("Máy", "PC"),
    "days": Words("Số ngày", "Days"),
    "reasons": Words("Lý do", "Reasons"),
    "down_long": Words(
        "Xã mất đường truyền quá {hours:g} giờ hành chính",
        "Communes whose line was down more than {hours:g} office hours",
    ),
    "unused_all_month": Words("Đường truyền không dùng cả tháng", "Lines unused all month"),
    "degraded_long": Words("Máy suy giảm từ {days} ngày trở lên", "PCs degraded for {days} days or more"),
    "none": Words("Không có.", "None."),
    "score_formula": Words(
        "Điểm (0–100) = {line} × đường truyền sẵn sàng (%) + {speed} × tốc độ (% hợp đồng, tối đa 100)"
        " + {pcs} × máy hoạt động (%) + {use} × tỷ lệ ngày làm việc có dùng đường truyền (%)."
        " Phần không có dữ liệu tính 0.",
        "Score (0–100) = {line} × line availability (%) + {speed} × speed (% of contract, at most 100)"
        " + {pcs} × PC availability (%) + {use} × share of working days the line was used (%)."
        " A part without data counts 0.",
    ),
    "outages": Words("Sự cố mất điện, mất mạng", "Outages (power, network)"),
    "outage_start": Words("Bắt đầu", "Started"),
    "outage_hours": Words("Thời gian (giờ)", "Duration (h)"),
    "outage_cause": Words("Nguyên nhân", "Cause"),
    "outage_charged": Words("Tính vào đường truyền", "Counted against the line"),
    "charged_yes": Words("Có", "Yes"),
    "charged_no": Words("Không (mất điện / đóng cửa)", "No (power cut / office closed)"),
    "peripherals": Words("Thiết bị ngoại vi (máy quét, chữ ký số, máy in)", "Peripherals (scanners, tokens, printers)"),
    "section_no_data": Words("Chưa có dữ liệu cho mục này.", "There is no data for this section yet."),
    "chart_line_by_area": Words("Đường truyền sẵn sàng theo khu vực (%)", "Line availability by area (%)"),
    "chart_daily_down": Words(
        "Số xã mất đường truyền mỗi ngày làm việc", "Communes with their line down, per working day"
    ),
    "chart_speed_by_area": Words("Tốc độ theo khu vực (% hợp đồng)", "Speed by area (% of contract)"),
    "mail_subject": Words(
        "Báo cáo tháng {month}: chuyển đổi số cấp xã", "Monthly report {month}: commune digital transformation"
    ),
    "mail_body": Words(
        "Kính gửi lãnh đạo,\n\nĐính kèm báo cáo tháng {month} (PDF để in, XLSX để tính toán).\n\ncommune-monitor",
        "Dear leaders,\n\nAttached is the report for {month} (PDF to print, XLSX to work with).\n\ncommune-monitor",
    ),
    "sheet_summary": Words("Tóm tắt", "Summary"),
    "sheet_areas": Words("Khu vực", "Areas"),
    "sheet_communes": Words("Xã", "Communes"),
    "sheet_down_long": Words("Mất kết nối lâu", "Down long"),
    "sheet_unused": Words("Không dùng cả tháng", "Unused all month"),
    "sheet_degraded": Words("Máy suy giảm lâu", "Degraded long"),
    "sheet_equipment": Words("Thiết bị", "Equipment"),
    "sheet_replacement": Words("Máy cần thay thế", "PCs to replace"),
    # raw and adjusted figures, no data, exclusions applied (collector/reports/evidence.py)
    "line_availability_adjusted": Words("Đường truyền sẵn sàng, đã loại trừ (%)", "Line availability, adjusted (%)"),
    "pc_availability_adjusted": Words("Máy hoạt động, đã loại trừ (%)", "PC availability, adjusted (%)"),
    "score_raw": Words("Điểm chưa loại trừ", "Score before exclusions"),
    "sheet_no_data": Words("Không có số liệu", "No data"),
    "no_data_list": Words(
        "Xã không có số liệu (không có máy nào gửi số liệu cả tháng): không xếp hạng",
        "Communes with no data (no agent reported all month): not ranked",
    ),
    "no_data_reason": Words("Lý do", "Reason"),
    "no_agent_since": Words("không có phần mềm giám sát gửi số liệu từ {date}", "no agent since {date}"),
    "no_agent_ever": Words("chưa từng có phần mềm giám sát gửi số liệu", "never had a reporting agent"),
    "sheet_exclusions": Words("Loại trừ", "Exclusions"),
    "exclusions_applied": Words(
        "Khoảng thời gian được loại trừ khỏi chỉ số đã điều chỉnh (có hiệu lực lúc lập báo cáo)",
        "Time left out of the adjusted figures (exclusions in force when the report was made)",
    ),
    "exclusion_id": Words("Số", "No."),
    "exclusion_scope": Words("Phạm vi", "Scope"),
    "exclusion_from": Words("Từ", "From"),
    "exclusion_to": Words("Đến", "To"),
    "exclusion_reason": Words("Lý do", "Reason"),
    "exclusion_note": Words("Ghi chú", "Note"),
    "exclusion_by": Words("Người ghi", "Recorded by"),
    "exclusion_hours": Words("Giờ hành chính loại trừ", "Office hours left out"),
    # the replacement page (collector/reports/replacement.py): the top [report] replacement_top per area
    "replacement": Words(
        "Máy cần thay thế: {top} máy điểm cao nhất mỗi khu vực", "PCs to replace: the {top} highest scores per area"
    ),
    "replacement_rank": Words("Hạng", "Rank"),
    "replacement_score": Words("Điểm thay thế", "Replacement score"),
    "replacement_days": Words("Ngày làm việc có số liệu", "Office days with data"),
    "replacement_disk_failing": Words("Ổ đĩa sắp hỏng", "Disk failing"),
    "replacement_hang_minutes_per_day": Words("Treo máy (phút mỗi ngày)", "Hangs (minutes a day)"),
    "replacement_memory_short": Words("Thiếu bộ nhớ (% thời gian)", "Short of memory (% of time)"),
    "replacement_cpu_saturated": Words("CPU quá tải (% thời gian)", "CPU saturated (% of time)"),
    "replacement_reboots_per_day": Words("Khởi động lại (lần mỗi ngày)", "Reboots (a day)"),
    "replacement_age_years": Words("Tuổi máy (năm)", "Age (years)"),
    "replacement_yes": Words("Có", "Yes"),
    "replacement_no": Words("Không", "No"),
    "replacement_counts": Words(
        "Số máy được xếp hạng (có số liệu trong giờ làm việc): {counts}.",
        "PCs ranked (with office-hours data): {counts}.",
    ),
    # frozen months (collector/reports/revisions.py)
    "revision": Words(
        "Bản số {number}: chốt lúc {time}, do {by} lập.", "Revision {number}: frozen at {time}, made by {by}."
    ),
    "provisional_current_month": Words(
        "Số liệu tạm tính: tháng chưa kết thúc nên chưa chốt.",
        "Provisional: the month is not over, so it is not frozen.",
    ),
    "provisional_settling": Words(
        "Số liệu tạm tính: giờ làm việc cuối tháng chưa tổng hợp xong, chưa chốt.",
        "Provisional: the month's last office hours are still being summed, so it is not frozen.",
    ),
    "provisional_held": Words(
        "Số liệu tạm tính: dữ liệu cũ của tháng đang được ghi bổ sung, chưa chốt.",
        "Provisional: the month's history is still being written, so it is not frozen.",
    ),
    "revision_changes": Words("Thay đổi so với bản số {number}", "Changes from revision {number}"),
    "revision_old": Words("Trước", "Before"),
    "revision_new": Words("Sau", "After"),
    "revision_no_change": Words("Không chỉ số nào của các xã thay đổi.", "No commune's figure changed."),
    "revision_why": Words("Lý do: {causes}.", "Why: {causes}."),
    "revision_listed": Words("có trong báo cáo", "listed"),
    "sheet_revision": Words("Bản sửa đổi", "Revision"),
    # the evidence appendix (collector/reports/appendix.py)
    "ev_line": Words(
        "Phụ lục: bằng chứng đường truyền sẵn sàng, theo xã và từng khung giờ làm việc (khoảng 5 phút)",
        "Appendix: line availability evidence, by commune and office window (5-minute slots)",
    ),
    "ev_line_note": Words(
        "Tính = có số liệu − không dùng − hệ thống không có số liệu; hoạt động = tính − mất (trừ mất điện, đóng cửa)."
        " Sẵn sàng = hoạt động / tính; đã loại trừ: phần thời gian loại trừ ra khỏi cả tử số và mẫu số."
        " Dòng Cộng là chỉ số in trong báo cáo.",
        "Counted = slots with data − unused − no data; up = counted − down (less power cuts, office closings)."
        " Availability = up / counted; adjusted: the excluded share taken out of both."
        " The Total row is the figure the report prints.",
    ),
    "ev_windows_up": Words("{n} khung giờ hoạt động cả khung giờ", "{n} windows up throughout"),
    "ev_windows_unused": Words("{n} khung giờ không dùng đường truyền", "{n} windows the line was not used"),
    "ev_windows_down": Words("{n} khung giờ mất kết nối cả khung giờ", "{n} windows down throughout"),
    "ev_total": Words("Cộng", "Total"),
    "ev_window": Words("Khung giờ", "Window"),
    "ev_slots": Words("Có số liệu", "Slots"),
    "ev_unused": Words("Không dùng", "Unused"),
    "ev_down": Words("Mất", "Down"),
    "ev_excused": Words("Do mất điện, đóng cửa", "Power cut, office closed"),
    "ev_no_data": Words("Hệ thống không có số liệu", "No data (ours)"),
    "ev_counted": Words("Tính", "Counted"),
    "ev_up": Words("Hoạt động", "Up"),
    "ev_excluded": Words("Loại trừ (%)", "Excluded (%)"),
    "ev_counted_adjusted": Words("Tính, đã loại trừ", "Counted, adjusted"),
    "ev_up_adjusted": Words("Hoạt động, đã loại trừ", "Up, adjusted"),
    "ev_outages": Words(
        "Phụ lục: các sự cố và bằng chứng nguyên nhân", "Appendix: outages and the evidence of their cause"
    ),
    "ev_end": Words("Kết thúc", "Ended"),
    "ev_office_hours": Words("Giờ hành chính", "Office hours"),
    "ev_confidence": Words("Độ tin cậy", "Confidence"),
    "ev_cause_evidence": Words("Bằng chứng", "Evidence"),
    "ev_pcs": Words(
        "Phụ lục: bằng chứng tình trạng máy, theo xã và từng máy", "Appendix: PC health evidence, by commune and PC"
    ),
    "ev_pcs_note": Words(
        "Máy hoạt động = trực tuyến / có số liệu (khoảng 5 phút); dòng Cộng là chỉ số in trong báo cáo.",
        "PC availability = online / slots (5-minute slots); the Total row is the figure the report prints.",
    ),
    "ev_online": Words("Trực tuyến", "Online"),
    "ev_degraded": Words("Suy giảm", "Degraded"),
    "ev_slots_adjusted": Words("Có số liệu, đã loại trừ", "Slots, adjusted"),
    "ev_online_adjusted": Words("Trực tuyến, đã loại trừ", "Online, adjusted"),
    "ev_degraded_days": Words("Ngày suy giảm", "Degraded days"),
    "ev_spells": Words("Các đợt suy giảm", "Degraded spells"),
    "ev_speed": Words(
        "Phụ lục: các lần đo tốc độ (trung vị là chỉ số)", "Appendix: the speed tests (their median is the figure)"
    ),
    "ev_tests": Words("Số lần đo", "Tests"),
    "ev_lowest": Words("Thấp nhất", "Lowest"),
    "ev_highest": Words("Cao nhất", "Highest"),
    "ev_each_test": Words("Từng lần đo (% hợp đồng)", "Each test (% of contract)"),
    "sheet_ev_line": Words("BC đường truyền", "Evidence line"),
    "sheet_ev_outages": Words("BC sự cố", "Evidence outages"),
    "sheet_ev_pcs": Words("BC máy", "Evidence PCs"),
    "sheet_ev_speed": Words("BC tốc độ", "Evidence speed"),
    "sheet_ev_items": Words("BC thiết bị", "Evidence equipment"),
    "ev_items": Words(
        "Phụ lục: bằng chứng thiết bị được cấp, theo xã và từng thiết bị (tình trạng vào cuối tháng)",
        "Appendix: issued equipment evidence, by commune and item (its state at the month's end)",
    ),
    "ev_items_note": Words(
        "Đang sử dụng = thấy trong {days} ngày trước cuối tháng (hoặc được phần mềm mở, nếu theo dõi PC/SC)."
        " Dòng Cộng là chỉ số in trong báo cáo; đã loại trừ: thiết bị đang được loại trừ vào cuối tháng bị bỏ ra.",
        "In use = seen within {days} days of the month's end (or opened by an application, where PC/SC watched)."
        " The Total row is the figure the report prints; adjusted: items excluded at the month's end left out.",
    ),
    "ev_kind": Words("Loại", "Kind"),
    "ev_serial": Words("Số sê-ri", "Serial"),
    "ev_device": Words("Thiết bị khớp", "Matched device"),
    "ev_days_seen": Words("Số ngày thấy", "Days seen"),
    "ev_which_days": Words("Các ngày thấy", "Days it was seen"),
    "ev_state": Words("Tình trạng", "State"),
    "ev_rule": Words("Quy tắc đánh giá", "Rule that judged it"),
    "ev_item_excluded": Words("Loại trừ", "Excluded"),
    "ev_none_seen": Words("không thấy", "none"),
    "ev_issued_in_use": Words("{in_use}/{issued} đang sử dụng", "{in_use}/{issued} in use"),
}
REVISION_CAUSES: Final[dict[str, Words]] = {  # why a month's report has a new revision
    "exclusion_added": Words(
        "thêm loại trừ số {id} ({commune}, {reason}, {start} đến {end}, do {by} ghi: {note})",
        "exclusion {id} added ({commune}, {reason}, {start} to {end}, recorded by {by}: {note})",
    ),
    "exclusion_withdrawn": Words(
        "rút loại trừ số {id} ({commune}, do {by} rút: {note})", "exclusion {id} withdrawn ({commune}, by {by}: {note})"
    ),
    "late_data": Words("dữ liệu đến muộn ({parts})", "late data ({parts})"),
    "registry": Words("danh mục xã, khu vực thay đổi", "the registry's communes or areas changed"),
    "method": Words(
        "cách tính thay đổi (phiên bản phần mềm mới)", "the figures are computed otherwise (a new release)"
    ),
}
REVISION_PARTS: Final[dict[str, Words]] = {  # the fetched rows a late-data revision names
    "windows": Words("giờ làm việc", "office hours"),
    "communes": Words("trạng thái đường truyền", "line states"),
    "pcs": Words("trạng thái máy", "PC states"),
    "speed": Words("đo tốc độ", "speed tests"),
    "alerts": Words("cảnh báo", "alerts"),
    "reasons": Words("lý do máy suy giảm", "degraded PCs' reasons"),
    "outages": Words("sự cố", "outages"),
    "equipment": Words("thiết bị đang dùng", "equipment in use"),
    "issued": Words("thiết bị đã cấp", "equipment issued"),
    "peripherals": Words("thiết bị thấy ở các máy", "devices seen on the PCs"),
    "heard": Words("lần đầu, lần cuối máy gửi số liệu", "when the PCs were first and last heard"),
}
WEEKDAYS: Final[dict[int, Words]] = {
    1: Words("Hai", "Mon"), 2: Words("Ba", "Tue"), 3: Words("Tư", "Wed"), 4: Words("Năm", "Thu"),
    5: Words("Sáu", "Fri"), 6: Words("Bảy", "Sat"), 7: Words("Chủ nhật", "Sun"),
}  # fmt: skip


def report_words(lang: str) -> dict[str, str]:
    """The monthly report's words in one language, for templates and renderers."""
    return {key: words.in_(lang) for key, words in REPORT.items()}


def report_weekdays(days: list[int], lang: str) -> str:
    """Working days as people say them: "thứ Hai, Ba, Tư, Năm, Sáu" or "Mon, Tue, Wed, Thu, Fri"."""
    return REPORT["workdays"].in_(lang).format(days=", ".join(WEEKDAYS[d].in_(lang) for d in days))


# ---- on-demand actions ("test now" from the desk: collector/actions.py) ----

ACTION_NAMES: Final[dict[str, Words]] = {  # the fixed catalogue (common.wire.ACTIONS)
    "speedtest_now": Words("Đo tốc độ đường truyền ngay", "Speed test now"),
    "probe_now": Words("Kiểm tra kết nối ngay (cổng, DNS, tỉnh)", "Probe now (gateway, DNS, province)"),
    "inventory_now": Words("Kiểm kê máy ngay", "Inventory now"),
    "peripherals_now": Words("Liệt kê thiết bị USB ngay", "USB devices now"),
}
ACTION_STATES: Final[dict[str, Words]] = {
    "pending": Words("Đang chờ máy trả lời", "Waiting for the PC"),
    "accepted": Words("Máy đang thực hiện", "The PC is running it"),
    "done": Words("Đã có kết quả", "Done"),
    "refused": Words("Máy từ chối", "Refused by the PC"),
    "failed": Words("Máy không làm được", "The PC could not do it"),
    "no_answer": Words("Không có trả lời sau {seconds} giây", "No answer in {seconds} s"),
}
ACTION_REFUSALS: Final[dict[str, Words]] = {  # common.wire.REFUSALS, and failed's reasons
    "not_allowed": Words(
        "máy không cho phép thao tác này ([actions] allow trong cấu hình của máy)",
        "the PC does not allow this action ([actions] allow in its config)",
    ),
    "unknown_action": Words("máy không biết thao tác này (phiên bản cũ?)", "the PC does not know this action (older?)"),
    "bad_request": Words("máy không đọc được yêu cầu", "the PC could not read the request"),
    "busy": Words("máy đang làm đúng thao tác này", "the PC is running this same action already"),
    "disabled": Words("phần cần cho thao tác này bị tắt trên máy", "the part it needs is turned off on the PC"),
    "no_result": Words("thao tác chạy nhưng không có kết quả", "the action ran and made no result"),
}
ACTION_ERRORS: Final[dict[str, Words]] = {
    "unknown_action": Words(
        "không có thao tác {name}; các thao tác: {names}", "there is no action {name}; the actions are {names}"
    ),
    "unknown_host": Words("không có máy {host}", "no host {host} is known"),
    "mode_not_taken": Words(
        "chỉ speedtest_now nhận mode, {name} thì không", "only speedtest_now takes a mode, not {name}"
    ),
    "unknown_request": Words("không có yêu cầu {request} cho máy {host}", "no request {request} for host {host}"),
    "broker_down": Words("không gửi được tới MQTT broker; thử lại", "the MQTT broker cannot be reached; try again"),
    "refused": Words("máy từ chối {name}: {reason}", "the PC refused {name}: {reason}"),
}


ACTION_CONSOLE: Final[dict[str, Words]] = {  # the console's "test now" card and result page
    "title": Words("Kiểm tra ngay", "Test now"),
    "intro": Words(
        "Yêu cầu một máy đo ngay; kết quả không tính vào báo cáo tháng.",
        "Ask a PC to measure now; the result is never counted in the monthly report.",
    ),
    "recent": Words("Yêu cầu gần đây", "Recent requests"),
    "asked": Words("Yêu cầu lúc", "Asked at"),
    "by": Words("Người yêu cầu", "Asked by"),
    "state": Words("Trạng thái", "State"),
    "result": Words("Kết quả", "Result"),
    "download": Words("Tải xuống", "Download"),
    "upload": Words("Tải lên", "Upload"),
    "ping": Words("Độ trễ", "Ping"),
    "skipped": Words("Bỏ qua", "Skipped"),
    "target": Words("Đích", "Target"),
    "ok": Words("Được", "OK"),
    "failed_probe": Words("Lỗi", "Failed"),
    "waiting": Words(
        "Trang tự tải lại mỗi 2 giây đến khi có kết quả.", "This page reloads every 2 s until the result comes."
    ),
    "back": Words("Quay lại xã/phường", "Back to the commune"),
    "none": Words("Chưa có yêu cầu nào.", "No request yet."),
    "viewer": Words("Cần mã quản trị để yêu cầu.", "An admin token is needed to ask."),
}


def action_reason(code: str) -> Words:
    """A refusal's or failure's words; a code this release does not know (a newer agent's) as itself."""
    return ACTION_REFUSALS.get(code, Words(code, code))


def both(words: Words, **values: object) -> str:
    """Vietnamese, then English, for an API answer a person reads: "vi / en"."""
    return f"{words.vi.format(**values)} / {words.en.format(**values)}"
