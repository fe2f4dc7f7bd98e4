"""MMAU (speech, sound, music): sample fixture only; the plugin is ``mmau`` (tasks/list_mcq)."""
