"""race_audio_high: sample fixture only; the plugin is the shared ``listening_mcq`` (tasks/list_mcq)."""
