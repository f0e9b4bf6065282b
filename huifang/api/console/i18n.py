"""The console's words in Chinese (default) and English, in one table.

Rules kept here:
- every visible word of the console and of the exports' headers is a key here; a template
  writes `t("key")`;
- a key missing from a language falls back to Chinese, then to the key itself, so a missing
  translation shows up as a readable English-ish key instead of an error page;
- the language comes from `?lang=` (which also sets the `lang` cookie), else the cookie,
  else the deployment's setting.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("zh-CN", "en-US")
LANG_COOKIE = "lang"

# key: (zh-CN, en-US)
_WORDS: dict[str, tuple[str, str]] = {
    "app_name": ("回访系统", "Huifang callbacks"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "login_failed": ("用户名或密码错误", "Wrong username or password"),
    "language_switch": ("English", "中文"),
    "nav_dashboard": ("统计看板", "Dashboard"),
    "nav_queue": ("回访队列", "Escalation queue"),
    "nav_tickets": ("督办单", "Tickets"),
    "nav_audit": ("审计日志", "Audit log"),
    "nav_scripts": ("话术脚本", "Scripts"),
    "nav_campaigns": ("回访任务", "Campaigns"),
    "nav_units": ("单位", "Units"),
    "nav_users": ("用户", "Users"),
    "role_admin": ("管理员", "Admin"),
    "role_agent": ("回访员", "Agent"),
    "role_supervisor": ("单位负责人", "Unit supervisor"),
    "role_inspector": ("督察", "Inspector"),
    "role_integration": ("接口", "Integration"),
    # statistics
    "period": ("统计周期", "Period"),
    "unit": ("单位", "Unit"),
    "all_units": ("全部单位", "All units"),
    "show": ("查询", "Show"),
    "report": ("统计", "report"),
    "unit_code": ("单位编码", "Unit code"),
    "unit_name": ("单位名称", "Unit"),
    "unit_level": ("层级", "Level"),
    "level_bureau": ("市局", "Bureau"),
    "level_branch": ("分局", "Branch"),
    "level_station": ("派出所", "Station"),
    "incidents": ("警情数", "Incidents"),
    "surveyed": ("回访数", "Surveyed"),
    "answered": ("有效回访", "Answered"),
    "satisfied": ("满意", "Satisfied"),
    "basically_satisfied": ("基本满意", "Basically satisfied"),
    "unsatisfied": ("不满意", "Unsatisfied"),
    "satisfaction_rate": ("满意率", "Satisfaction rate"),
    "attitude_rate": ("服务态度满意率", "Attitude"),
    "arrival_time_rate": ("到场时间满意率", "Arrival time"),
    "handling_rate": ("处置结果满意率", "Handling"),
    "category_attitude": ("投诉·态度", "Complaints: attitude"),
    "category_arrival_time": ("投诉·到场", "Complaints: arrival"),
    "category_handling": ("投诉·处置", "Complaints: handling"),
    "category_other": ("投诉·其他", "Complaints: other"),
    "tickets_issued": ("督办单数", "Tickets issued"),
    "tickets_rectified": ("已整改", "Rectified"),
    "tickets_on_time": ("按期整改", "On time"),
    "tickets_overdue": ("超期", "Overdue"),
    "tickets_closed": ("回访办结", "Closed by second callback"),
    "tickets_reopened": ("重新督办", "Reopened"),
    "rectification_rate": ("整改率", "Rectification rate"),
    "second_callback_rate": ("二次回访满意率", "Second-callback satisfaction"),
    "month_on_month": ("环比", "Month on month"),
    "year_on_year": ("同比", "Year on year"),
    "trend": ("满意率趋势", "Satisfaction trend"),
    "ranking": ("单位排名", "Unit ranking"),
    "complaints": ("投诉类别", "Complaint categories"),
    "dimensions": ("三项满意率", "The three dimensions"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "export_xlsx": ("导出 Excel", "Export Excel"),
    "units_table": ("分单位统计", "By unit"),
    # queue and cases
    "queue_filters": ("筛选", "Filters"),
    "state": ("状态", "State"),
    "state_open": ("待处理", "Open"),
    "state_claimed": ("处理中", "Claimed"),
    "state_resolved": ("已办结", "Resolved"),
    "origin": ("来源", "Origin"),
    "origin_voice": ("电话", "Call"),
    "origin_sms": ("短信", "SMS"),
    "origin_import": ("12345 转办", "Imported"),
    "priority": ("优先级", "Priority"),
    "sla": ("时限", "SLA"),
    "sla_left": ("剩余", "left"),
    "sla_overdue": ("已超时", "overdue"),
    "summary": ("摘要", "Summary"),
    "claimed_by": ("认领人", "Claimed by"),
    "claim": ("认领", "Claim"),
    "release": ("退回队列", "Release"),
    "open_case": ("查看", "Open"),
    "case": ("回访案件", "Case"),
    "incident": ("警情", "Incident"),
    "source": ("来源", "Source"),
    "handled_at": ("处置时间", "Handled at"),
    "caller": ("报警人", "Caller"),
    "officer": ("处警民警", "Officer"),
    "category": ("类别", "Category"),
    "answers": ("回访答案", "Answers"),
    "question": ("问题", "Question"),
    "outcome": ("结果", "Outcome"),
    "transcript": ("录音转写", "Transcript"),
    "recording": ("录音", "Recording"),
    "notes": ("备注", "Notes"),
    "defer": ("未联系上，稍后再拨", "Unreachable: retry later"),
    "retry_hours": ("几小时后重拨", "Retry in hours"),
    "click_to_call": ("一键回拨", "Call the citizen"),
    "call_placed": ("已发起回拨", "Call placed"),
    "resolve": ("办结", "Resolve"),
    "resolution": ("办结方式", "Resolution"),
    "resolution_ticket": ("有效投诉，下发督办单", "Valid complaint: issue a ticket"),
    "resolution_explained": ("已解释说明", "Explained to the citizen"),
    "resolution_withdrawn": ("群众撤回", "Withdrawn"),
    "findings": ("核查情况", "Findings"),
    "nothing_here": ("暂无数据", "Nothing here"),
    # tickets
    "ticket_number": ("督办单号", "Ticket"),
    "deadline": ("整改期限", "Deadline"),
    "issued_at": ("下发时间", "Issued"),
    "ticket_issued": ("已下发", "Issued"),
    "ticket_acknowledged": ("已签收", "Acknowledged"),
    "ticket_rectified": ("已整改", "Rectified"),
    "ticket_verified": ("已回访核实", "Verified"),
    "ticket_closed": ("已办结", "Closed"),
    "acknowledge": ("签收", "Acknowledge"),
    "report_rectification": ("上报整改情况", "Report rectification"),
    "rectification": ("整改情况", "Rectification"),
    "history": ("办理记录", "History"),
    "facts": ("基本情况", "Facts"),
    # audit
    "audit_search": ("搜索", "Search"),
    "at": ("时间", "Time"),
    "actor": ("操作人", "Actor"),
    "action": ("操作", "Action"),
    "target": ("对象", "Target"),
    "detail": ("详情", "Detail"),
    # scripts
    "script_editor": ("话术编辑", "Script editor"),
    "script_valid": ("脚本校验通过", "The script is valid"),
    "script_errors": ("脚本有错误", "The script has errors"),
    "publish": ("发布新版本", "Publish a version"),
    "published": ("已发布", "Published"),
    "version": ("版本", "Version"),
    "try_script": ("文字试拨", "Try it as text"),
    "try_input": ("输入按键或说的话，逐行一条", "Keys or words, one per line"),
    "run": ("运行", "Run"),
    "listen": ("试听", "Listen"),
    "render_prompts": ("合成语音", "Render prompts"),
    "new_script": ("新脚本", "New script"),
    "name": ("名称", "Name"),
    "language": ("语言", "Language"),
    # campaigns
    "create_campaign": ("新建回访任务", "Create a campaign"),
    "handled_from": ("处置时间自", "Handled from"),
    "handled_to": ("至", "to"),
    "channels": ("渠道", "Channels"),
    "script": ("话术", "Script"),
    "start": ("开始", "Start"),
    "pause": ("暂停", "Pause"),
    "resume": ("继续", "Resume"),
    "progress": ("进度", "Progress"),
    "contacts": ("回访对象", "Contacts"),
    "campaign_draft": ("草稿", "Draft"),
    "campaign_running": ("进行中", "Running"),
    "campaign_paused": ("已暂停", "Paused"),
    "campaign_finished": ("已完成", "Finished"),
    "contact_pending": ("待联系", "Pending"),
    "contact_in_progress": ("联系中", "In progress"),
    "contact_answered": ("已回访", "Answered"),
    "contact_unreachable": ("未接通", "Unreachable"),
    "contact_excluded": ("已排除", "Excluded"),
    "calling_rules": ("呼叫规则", "Calling rules"),
    "window_start": ("每日开始", "Calls from"),
    "window_end": ("每日结束", "Calls until"),
    "max_attempts": ("最多拨打次数", "Max attempts"),
    "call_on_weekends": ("周末拨打", "Call on weekends"),
    "call_on_holidays": ("节假日拨打", "Call on holidays"),
    "create": ("创建", "Create"),
    "role": ("角色", "Role"),
    "display_name": ("姓名", "Name"),
    "parent": ("上级单位", "Parent"),
    "save": ("保存", "Save"),
    "edit": ("编辑", "Edit"),
    "active": ("启用", "Active"),
    "new_password": ("新密码（不改请留空）", "New password (leave empty to keep)"),
    "error": ("出错了", "Error"),
    "error_403": ("无权访问此页面", "You may not open this page"),
    "error_404": ("页面或记录不存在", "No such page or record"),
    "error_409": (
        "记录已被他人更改，请刷新后重试",
        "Someone changed this meanwhile; reload and try again",
    ),
    "back_home": ("返回首页", "Back to the start page"),
}


def translate(key: str, lang: str) -> str:
    words = _WORDS.get(key)
    if words is None:
        return key
    return words[1] if lang == "en-US" else words[0]


def translator(lang: str) -> Callable[[str], str]:
    return lambda key: translate(key, lang)


def pick_language(query: str | None, cookie: str | None, default: str) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    return default if default in LANGUAGES else LANGUAGES[0]
