"""race_audio_middle: sample fixture only; the plugin is the shared ``listening_mcq`` (tasks/list_mcq)."""
