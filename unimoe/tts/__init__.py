"""Speech output of Uni-MoE-2.0-Omni: the MoE-TTS code generator, the WavTokenizer codec and the span parser
that connects them to the language model (reference: the released ``speech_generator`` and WavTokenizer)."""
