"""Image output for Uni-MoE-2.0-Omni: the Task-DiT path (reference: the released ``modeling_out.py``).

The language model answers with ``[TASK0][TASK1][TASK2][IMG0]...[IMG31]``; the last-layer hidden states of
those spans go through three projectors (:mod:`.projectors`) that condition a DiT (:mod:`.dit`) denoising in
a VAE's latent space (:mod:`.vae`) with a flow sampler (:mod:`.sampler`). :mod:`.trigger` finds the spans,
:mod:`.generator` ties the parts together, :mod:`.layout` maps the released checkpoint keys.
"""
