"""Alert channels (email, Slack, webhooks) fed from audits."""
