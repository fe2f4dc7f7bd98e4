"""Built-in task plugins, registered by name as lazy ``"module:Class"`` strings (nothing is imported here).

The catalogue imports this module before resolving a task's ``plugin`` key; a config can only pick one of
these names (or an entry point), never name a module itself.
"""

from harness.task import TASK_PLUGINS

TASK_PLUGINS.register("videomme", "tasks.videomme:VideoMME")
TASK_PLUGINS.register("librispeech", "tasks.librispeech_test_clean:LibriSpeech")
TASK_PLUGINS.register("mmbench", "tasks.mmbench_en_dev:MMBench")
TASK_PLUGINS.register("gpqa", "tasks.gpqa_diamond:GPQA")
TASK_PLUGINS.register("clotho_caption", "tasks.clotho_v2_caption:ClothoCaption")
TASK_PLUGINS.register("derain", "tasks.rain100l_derain:Derain")
TASK_PLUGINS.register("omniworld", "tasks.omniworld:OmniWorld")
TASK_PLUGINS.register("media_mcq", "tasks.media_mcq:MediaMCQ")
TASK_PLUGINS.register("vsibench", "tasks.media_mcq:VSIBench")
TASK_PLUGINS.register("mvbench", "tasks.media_mcq:MVBench")
TASK_PLUGINS.register("charades_sta", "tasks.charades_sta:CharadesSTA")
TASK_PLUGINS.register("list_mcq", "tasks.list_mcq:ListMCQ")
TASK_PLUGINS.register("mmau", "tasks.list_mcq:MMAU")
TASK_PLUGINS.register("audio_qa", "tasks.audio_qa:AudioQA")
TASK_PLUGINS.register("listening_mcq", "tasks.list_mcq:ListeningMCQ")
TASK_PLUGINS.register("image_mcq", "tasks.image_mcq:ImageMCQ")
TASK_PLUGINS.register("mmmu", "tasks.image_mcq:MMMU")
TASK_PLUGINS.register("videommmu", "tasks.media_mcq:VideoMMMU")
TASK_PLUGINS.register("judged_audio_qa", "tasks.audio_qa:JudgedAudioQA")
TASK_PLUGINS.register("mmbench_hint_speech", "tasks.mmbench_hint_speech:MMBenchHintSpeech")
TASK_PLUGINS.register("omnivideobench", "tasks.media_mcq:OmniVideoBench")
TASK_PLUGINS.register("mathvista", "tasks.mathvista_testmini:MathVista")
TASK_PLUGINS.register("tts", "tasks.tts:TTS")
TASK_PLUGINS.register("controlgen", "tasks.multigen:ControlGen")
TASK_PLUGINS.register("streamingbench", "tasks.media_mcq:StreamingBench")
TASK_PLUGINS.register("gen_edit", "tasks.gen_edit:GenEdit")
TASK_PLUGINS.register("magicbrush", "tasks.gen_edit:MagicBrush")
TASK_PLUGINS.register("coco_captions", "tasks.gen_edit:CocoCaptions")
TASK_PLUGINS.register("mathvision", "tasks.mathvision_test:MathVision")
TASK_PLUGINS.register("mathverse", "tasks.mathverse_testmini_vision:MathVerse")
TASK_PLUGINS.register("gedit", "tasks.judged_images:GEditBench")
TASK_PLUGINS.register("wise", "tasks.judged_images:WISE")
TASK_PLUGINS.register("charxiv_descriptive", "tasks.charxiv:CharXivDescriptive")
TASK_PLUGINS.register("charxiv_reasoning", "tasks.charxiv:CharXivReasoning")
