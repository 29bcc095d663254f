"""The pages' longer prose in one place: page introductions, multi-sentence help and captions. Those
with ``{names}`` are filled in by the page with ``str.format``."""

from __future__ import annotations

from convvis_core.cam.baselines import BLUR_SIGMA
from convvis_core.featureviz.presets import PRESET_NOTES

COMPARE_INTRO = ("What fine-tuning changed: linear CKA of each layer with its counterpart, and the filters whose "
                 "weights and activations changed most.")

FILTERS_INTRO = ("Gradient ascent finds the image each filter responds to most (activation maximization). Results "
                 "are cached on disk: a repeat is instant, even after a restart.")
PRESET_HELP = ("Each preset is named after where it comes from; the default fits the model's input size. "
               + " ".join(f"**{name}**: {text}" for name, text in PRESET_NOTES.items()))
CLASS_LOGIT = "Class logit: each 'filter' is a class; the image maximizes its pre-softmax score."
DEAD_FILTERS = ("{count} dead filter(s): {filters}. No change to the image moves them (zero gradient, e.g. all-zero "
                "weights), so they are shown as grey tiles, not noise.")
WEAK_FILTERS = ("{count} filter(s) barely fire on their pictures (what was maximized stayed below zero): {filters}. "
                "Their pictures show little of what they detect. Try plain pixels and a larger learning rate under "
                "Advanced settings, or the 'keras.io example' preset.")

UNIT_INTRO = ("One filter: what it looks for, which images excite it, where it fires on yours, what drives it and "
              "what it drives. Every filter named here links to its own page.")
DIVERSE_HELP = ("Optimized together under the model's default preset, each from its own start; Lucid's diversity "
                "objective pushes their layer statistics (Gram matrices) apart, so each shows another facet.")
WEAK_UNIT = "Weak under this recipe: what was maximized stayed below zero. Try plain pixels on the Filters page."
CIRCUIT_IN = ("The strongest of {count} input channels of **{conv}**, reading {source} (kernel-slice norm; the sign "
              "of the slice's sum).")
CIRCUIT_OUT = ("The filters of **{reader}** that read #{filter} most strongly, by the norm of the kernel slice "
               "through which they read it.")
NO_READERS = "No later convolution reads this filter (a classifier head or a sum reads it)."

CRAFT_INTRO = ("What **parts** is a class made of, and which matter most? CRAFT cuts the target's images into crops, "
               "factorizes the layer's activations of the crops into concepts (NMF), and ranks each concept by how much "
               "the target depends on it. Each concept is shown by the crops that hold it most, where it lies in an "
               "image, and a picture of its direction in the layer.")
GROUPS_INTRO = ("Which **groups of channels** fire together on this image, and where? The layer's activations over the "
                "image's positions are factorized into groups (NMF): each group has a map over the image, a direction "
                "in the layer (pictured), its strongest channels (linked to their unit pages) and its share of the "
                "target's evidence (gradient × activation).")

# The Heatmaps page
METHODS_HELP = ("Grad-CAM, Grad-CAM++, HiResCAM, XGradCAM and Layer-CAM take one backward pass, EigenCAM one forward "
                "pass (well under a second; EigenCAM ignores the target). Ablation-CAM zeroes each channel and re-runs "
                "the rest of the network (about 0.2 s on MobileNet's last layer); Score-CAM masks the picture by each "
                "channel and runs the whole model (about 10 s there). Vanilla gradient, SmoothGrad and Integrated "
                "Gradients attribute pixels (Integrated Gradients: one gradient per step), as do Guided Backpropagation "
                "and Gradient × Input (one backward pass each; Guided Grad-CAM multiplies Guided Backpropagation by "
                "Grad-CAM). Occlusion and RISE only read the model's outputs: one forward pass per patch position or "
                "random mask (on MobileNet about 4 s and 10 s with the defaults). Results are cached.")
BASELINE_HELP = ("What a removed pixel is replaced with, in the deletion and insertion curves, Score-CAM's masks, "
                 "Occlusion's patch, RISE's masks and Integrated Gradients' starting point: the image blurred "
                 f"(Gaussian, σ = {BLUR_SIGMA:.0%} of its side: shapes and textures gone, colours kept), its mean "
                 "colour, or black. ROAD does not use it: it fills removed pixels in from their neighbours.")
IG_STEPS_HELP = ("Gradients along the straight path from the baseline (the 'deleted pixels' picture) to the image; the "
                 "attributions add up to the change in the target's value, closer with more steps (the sum is shown "
                 "under the map). Cost: one gradient per step.")
RISE_MASKS_HELP = ("Random smooth masks, one forward pass each (500: about 10 s on MobileNet on 2 CPU cores, well under "
                   "a second on LeNet); more give a smoother map (the paper used 4,000).")
