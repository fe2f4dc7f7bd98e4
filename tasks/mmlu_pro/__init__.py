"""MMLU-Pro: sample fixture only; the plugin is the shared ``list_mcq`` (tasks/list_mcq)."""
