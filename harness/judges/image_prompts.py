"""Protocol texts of the image-judging prompts, verbatim (trailing spaces and blank lines included).

They are facts of the benchmarks' scoring code, not our prose; the registry in :mod:`harness.judges.llm` turns
them into versioned templates (``<field>`` placeholders become ``{field}``).

* VIEScore, task "tie" (text-guided image editing), as GEdit-Bench scores it: stepfun-ai/Step1X-Edit
  ``GEdit-Bench/viescore/__init__.py`` joins ``vie_prompts._context_no_delimit``,
  ``_prompts_0shot_two_image_edit_rule`` and ``_prompts_0shot_tie_rule_SC`` with newlines (semantic
  consistency, SC; the source then the edited image), and ``_context_no_delimit`` with
  ``_prompts_0shot_rule_PQ`` (perceptual quality, PQ; the edited image only).
  lmms-eval's ``tasks/gedit_bench/viescore`` carries the same texts.
* WISE: PKU-YuanGroup/WISE ``gpt_eval.py`` (2025-06-03 revision, later kept as ``WISE_legacy/gpt_eval.py``),
  ``build_evaluation_messages``: a system message and this user text, then the image.
"""

from __future__ import annotations

# VIEScore's shared context (its rules follow per task)
_VIESCORE_CONTEXT = (
    'You are a professional digital artist. You will have to evaluate the effectiveness of the '
    'AI-generated image(s) based on given rules.\n'
    'All the input images are AI-generated. All human in the images are AI-generated too. so you need not '
    'worry about the privacy confidentials.\n'
    '\n'
    'You will have to give your output in this way (Keep your reasoning concise and short.):\n'
    '{\n'
    '"score" : [...],\n'
    '"reasoning" : "..."\n'
    '}\n'
    'RULES:\n'
    '\n'
)

VIESCORE_TIE_SC = _VIESCORE_CONTEXT + (
    'Two images will be provided: The first being the original AI-generated image and the second being an '
    'edited version of the first.\n'
    'The objective is to evaluate how successfully the editing instruction has been executed in the second '
    'image.\n'
    '\n'
    'Note that sometimes the two images might look identical due to the failure of image edit.\n'
    '\n'
    '\n'
    'From scale 0 to 10: \n'
    'A score from 0 to 10 will be given based on the success of the editing. (0 indicates that the scene '
    'in the edited image does not follow the editing instruction at all. 10 indicates that the scene in '
    'the edited image follow the editing instruction text perfectly.)\n'
    'A second score from 0 to 10 will rate the degree of overediting in the second image. (0 indicates '
    'that the scene in the edited image is completely different from the original. 10 indicates that the '
    'edited image can be recognized as a minimal edited yet effective version of original.)\n'
    "Put the score in a list such that output score = [score1, score2], where 'score1' evaluates the "
    "editing success and 'score2' evaluates the degree of overediting.\n"
    '\n'
    'Editing instruction: <instruction>\n'
)

VIESCORE_PQ = _VIESCORE_CONTEXT + (
    'The image is an AI-generated image.\n'
    'The objective is to evaluate how successfully the image has been generated.\n'
    '\n'
    'From scale 0 to 10: \n'
    'A score from 0 to 10 will be given based on image naturalness. \n'
    '(\n'
    '    0 indicates that the scene in the image does not look natural at all or give a unnatural feeling '
    'such as wrong sense of distance, or wrong shadow, or wrong lighting. \n'
    '    10 indicates that the image looks natural.\n'
    ')\n'
    'A second score from 0 to 10 will rate the image artifacts. \n'
    '(\n'
    '    0 indicates that the image contains a large portion of distortion, or watermark, or scratches, or '
    'blurred faces, or unusual body parts, or subjects not harmonized. \n'
    '    10 indicates the image has no artifacts.\n'
    ')\n'
    'Put the score in a list such that output score = [naturalness, artifacts]\n'
)

WISE_SYSTEM = (
    "You are a professional Vincennes image quality audit expert, please evaluate the image quality "
    "strictly according to the protocol."
)

WISE_EVAL = (
    'Please evaluate strictly and return ONLY the three scores as requested.\n'
    '\n'
    '# Text-to-Image Quality Evaluation Protocol\n'
    '\n'
    '## System Instruction\n'
    'You are an AI quality auditor for text-to-image generation. Apply these rules with ABSOLUTE '
    'RUTHLESSNESS. Only images meeting the HIGHEST standards should receive top scores.\n'
    '\n'
    '**Input Parameters**  \n'
    "- PROMPT: [User's original prompt to]  \n"
    '- EXPLANATION: [Further explanation of the original prompt] \n'
    '---\n'
    '\n'
    '## Scoring Criteria\n'
    '\n'
    '**Consistency (0-2):**  How accurately and completely the image reflects the PROMPT.\n'
    '* **0 (Rejected):**  Fails to capture key elements of the prompt, or contradicts the prompt.\n'
    '* **1 (Conditional):** Partially captures the prompt. Some elements are present, but not all, or not '
    "accurately.  Noticeable deviations from the prompt's intent.\n"
    '* **2 (Exemplary):**  Perfectly and completely aligns with the PROMPT.  Every single element and '
    'nuance of the prompt is flawlessly represented in the image. The image is an ideal, unambiguous '
    'visual realization of the given prompt.\n'
    '\n'
    '**Realism (0-2):**  How realistically the image is rendered.\n'
    '* **0 (Rejected):**  Physically implausible and clearly artificial. Breaks fundamental laws of '
    'physics or visual realism.\n'
    '* **1 (Conditional):** Contains minor inconsistencies or unrealistic elements.  While somewhat '
    'believable, noticeable flaws detract from realism.\n'
    '* **2 (Exemplary):**  Achieves photorealistic quality, indistinguishable from a real photograph.  '
    'Flawless adherence to physical laws, accurate material representation, and coherent spatial '
    'relationships. No visual cues betraying AI generation.\n'
    '\n'
    '**Aesthetic Quality (0-2):**  The overall artistic appeal and visual quality of the image.\n'
    '* **0 (Rejected):**  Poor aesthetic composition, visually unappealing, and lacks artistic merit.\n'
    '* **1 (Conditional):**  Demonstrates basic visual appeal, acceptable composition, and color harmony, '
    'but lacks distinction or artistic flair.\n'
    '* **2 (Exemplary):**  Possesses exceptional aesthetic quality, comparable to a masterpiece.  '
    'Strikingly beautiful, with perfect composition, a harmonious color palette, and a captivating '
    'artistic style. Demonstrates a high degree of artistic vision and execution.\n'
    '\n'
    '---\n'
    '\n'
    '## Output Format\n'
    '\n'
    '**Do not include any other text, explanations, or labels.** You must return only three lines of text, '
    'each containing a metric and the corresponding score, for example:\n'
    '\n'
    '**Example Output:**\n'
    'Consistency: 2\n'
    'Realism: 1\n'
    'Aesthetic Quality: 0\n'
    '\n'
    '---\n'
    '\n'
    '**IMPORTANT Enforcement:**\n'
    '\n'
    "Be EXTREMELY strict in your evaluation. A score of '2' should be exceedingly rare and reserved only "
    'for images that truly excel and meet the highest possible standards in each metric. If there is any '
    'doubt, downgrade the score.\n'
    '\n'
    "For **Consistency**, a score of '2' requires complete and flawless adherence to every aspect of the "
    'prompt, leaving no room for misinterpretation or omission.\n'
    '\n'
    "For **Realism**, a score of '2' means the image is virtually indistinguishable from a real photograph "
    'in terms of detail, lighting, physics, and material properties.\n'
    '\n'
    "For **Aesthetic Quality**, a score of '2' demands exceptional artistic merit, not just pleasant "
    'visuals.\n'
    '\n'
    '--- \n'
    'Here are the Prompt and EXPLANATION for this evaluation:\n'
    'PROMPT: "<prompt>"\n'
    'EXPLANATION: "<explanation>"\n'
    'Please strictly adhere to the scoring criteria and follow the template format when providing your '
    'results.'
)
