"""Slack slash commands on the daemon's HTTP server (`POST /slack/commands`), enabled by
jobs.yaml's `notify.slack_commands`.

    settings.py   the commands (name, usage, whether it changes anything) and the settings (pure)
    signing.py    Slack's request signature, the five-minute window and replays (pure)
    commands.py   a command's text -> a command, and who may use it where (pure)
    replies.py    what the answers say (Slack's mrkdwn, escaped)
    work.py       what each command does: reads from history, one-target runs, `trigger`
    service.py    the route: verify, decide, acknowledge within Slack's 3 s, post the rest to
                  the command's response_url

Every command that changes something is a run, claimed and executed by the daemon as any run
(the same runner, rate governor and environment locks), recorded with trigger `slack` and the
Slack user in `requested_by`. This package's __init__ imports nothing: the core reads
settings.py without loading the service.
"""
