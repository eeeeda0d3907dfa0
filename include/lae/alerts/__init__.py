"""LAE alerting: one message format, the notifier on every task, ``send_alert`` for the rest.

See lae.alerts.channels for how Slack-compatible webhooks and email are switched on.
"""

from lae.alerts.channels import SMTP_CONN_ID, WEBHOOK_CONN_ID, read_records
from lae.alerts.message import Alert
from lae.alerts.notifier import LaeNotifier, alerts_file, send_alert

__all__ = ["SMTP_CONN_ID", "WEBHOOK_CONN_ID", "Alert", "LaeNotifier", "alerts_file",
           "read_records", "send_alert"]
