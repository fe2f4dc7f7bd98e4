"""clotho_aqa: sample fixture only; the plugin is the shared ``audio_qa`` (tasks/audio_qa)."""
