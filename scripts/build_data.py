"""The photo classifier's data: a committed manifest of every file, and the folder rebuilt from it.

    python scripts/build_data.py manifest --shared ../shared/data --mirrors /path/to/mirrors > data/manifest.csv
    python scripts/build_data.py build data/manifest.csv --shared ../shared/data --mirrors M --out data/photo

``manifest`` lists the sources below, one row per file: where it sits in the data folder, class, group
(generator or source), origin repository, commit, path in that repository, SHA-256 and licence.
``build`` recreates ``OUT/{real,fake}/<group>/<file>`` from the manifest: files of the shared tarballs are
taken from them, files of public repositories from local mirrors (bare git repositories named
``owner+name/repo`` under MIRRORS, as ``git`` clones them) or, where a network exists, downloaded from
GitHub at the pinned commit. Every file's SHA-256 is checked; a mismatch stops the build.

Face crops (group ``face-crops``): square crops of faces in real photos the manifest already lists, from
the boxes in ``data/face_crops.csv`` (found once by ``scripts/face_crops.py``). Their rows carry the source
file's repository, commit, path and SHA-256, with ``#crop=x,y,side`` after the path; ``build`` checks the
source and cuts the crop.

Deduplication by content and dropping near-constant images happen when training reads the folder
(:func:`fakewatch.training.photo_data.decode_all`), so the manifest stays a plain record of the sources.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import random
import re
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

FIELDS = ("file", "label", "group", "repo", "commit", "path", "sha256", "licence")
# Reserved for independent evaluation: never trained or tuned on, nor any copy of their files (lower case)
RESERVED = ("dcsan/imagen", "hastingslab-org/ai-human-images", "preangelleo/illustration-style-samples",
            "inf-imagine/sentry", "haywoodsloan/ai-image-detector", "drewnoakes/metadata-extractor-images",
            "ml72/ai-image-classifier-playground", "selvamaribose/cifake-ai-synthetic-image-classification",
            "m0pinxxx/ai-recognition-with-cifake", "sklinderton/vit-real-vs-fake-faces",
            "comfyanonymous/comfyui_examples", "c2pa-org/public-testfiles", "contentauth/c2pa-rs")
RESERVED_ANYWHERE = ("urban100", "val_images")  # Urban100 in any copy; the held-out split of a faces set
SHARED_PHOTOS = "photos-train.tar.gz"
SHARED_FACES = "faces-train.tar.gz"
PHOTOS_LICENCES = {"vladmandic/sd-samples": "MIT", "EliSchwartz/imagenet-sample-images": "ImageNet terms (research)",
                   "jbhuang0604/SelfExSR": "research benchmark"}
# Public repositories brought in beside the shared sets: (repo, commit, label, group, path filter, licence)
REPOSITORIES = (
    ("CompVis/stable-diffusion", "21f890f9da3cfbeaba8e2ac3c425ee9e998d5229", "fake", "compvis-sd1-samples",
     lambda path: path.startswith(("assets/stable-samples/txt2img/", "assets/stable-samples/img2img/mountains"))
     or (path.startswith("assets/a-") and "fire" in path) or path == "assets/the-earth-is-on-fire,-oil-on-canvas.png",
     "CreativeML Open RAIL-M"),
    ("CompVis/stable-diffusion", "21f890f9da3cfbeaba8e2ac3c425ee9e998d5229", "real", "compvis-inpainting-photos",
     lambda path: path.startswith("data/inpainting_examples/") and not path.endswith("_mask.png"),
     "CreativeML Open RAIL-M (photos from Unsplash/Flickr)"),
    # Trained on: phone and camera photos of objects and pets (no red_cartoon: a drawing), and SD 2.x 768 px
    # txt2img grids (outputs only; the repository's other samples show real inputs beside the outputs)
    ("google/dreambooth", "4f887af7970a06fc0cd3adaa1d0b368547d6a1d0", "real", "dreambooth-subjects",
     lambda path: path.startswith("dataset/") and path.endswith(".jpg") and "/red_cartoon/" not in path,
     "CC-BY-4.0 dataset; Unsplash licence or the authors' own photos (dataset/references_and_licenses.txt)"),
    ("Stability-AI/stablediffusion", "cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf", "fake", "sd2-768-samples",
     lambda path: path.startswith("assets/stable-samples/txt2img/768/merged-") and path.endswith(".png"),
     "CreativeML Open RAIL++-M"),
    # Trained on: web photos of people (celebrities, couples, a selfie; JPEG from many sources), the face
    # recognition library's test images (its mirrored copy is left out)
    ("serengil/deepface", "243209fd7b46ecdecf72665cc25219f6e8181f25", "real", "deepface-people-photos",
     lambda path: path.startswith("tests/unit/dataset/") and path.endswith(".jpg") and "reflection" not in path,
     "MIT repository; web photos of public figures"),
    # Trained on: photos that image libraries and vision projects ship as examples (COCO val2014 Flickr photos,
    # object-detection and segmentation demo photos, scikit-image's photographs including a page scan);
    # drawings, paintings, diagrams, microscopy and astronomy images are left out
    ("CMU-Perceptual-Computing-Lab/openpose", "5c5d96523ef917bd30301245fdc8343937cae48d", "real",
     "openpose-coco-photos",
     lambda path: path.startswith("examples/media/COCO_") and path.endswith(".jpg"),
     "openpose academic licence; COCO images under their Flickr licences"),
    ("pjreddie/darknet", "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9", "real", "darknet-photos",
     lambda path: path in {f"data/{name}.jpg" for name in ("dog", "eagle", "giraffe", "horses", "kite", "person")},
     "public domain (YOLO licence)"),
    ("scikit-image/scikit-image", "cd0a3d22b9f359f05618d75d5c7a29b91b4951ca", "real", "skimage-photos",
     lambda path: path in {f"src/_skimage2/data/{name}" for name in (
         "astronaut.png", "brick.png", "camera.png", "chelsea.png", "clock_motion.png", "coffee.png", "coins.png",
         "grass.png", "gravel.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png",
         "rocket.jpg")},
     "BSD-3-Clause repository; each photo's terms in the skimage.data docstrings (public domain, CC0, research)"),
    ("facebookresearch/segment-anything", "dca509fe793f601edb92606367a655c15ac00fdf", "real", "segment-anything-photos",
     lambda path: path.startswith("notebooks/images/") and path.endswith(".jpg"), "Apache-2.0"),
    ("ianare/exif-samples", "5332a9cf0220e9c6c93f88a187daa90808051e10", "real", "exif-samples-cameras",
     lambda path: path.startswith("jpg/") and path.lower().endswith((".jpg", ".jpeg"))
     and not any(skip in path for skip in ("corrupted", "PaintTool", "photoshop", "invalid")),
     "MIT"),
    # Trained on: real photos of people, so that a face is no sign of a generator: a face-recognition library's
    # examples (150 px face crops of TV frames, stock portraits, cast photos), a face detector's web photos
    # of groups (one 3D render among them is left out), and scanned old photographs (autochromes, damaged prints)
    ("justadudewhohacks/face-api.js", "a86f011d72124e5fb93e59d5c4ab98f699dd5c9c", "real", "faceapi-people-photos",
     lambda path: path.startswith("examples/images/") and path.endswith((".jpg", ".png")),
     "MIT repository; TV frames and stock photos"),
    ("Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB", "dffdddda9794a50607cba8f318507a28c1c27cab", "real",
     "face-detector-group-photos",
     lambda path: path.startswith("imgs/") and path.endswith(".jpg") and path != "imgs/22.jpg",
     "MIT repository; web photos of groups of people"),
    ("microsoft/Bringing-Old-Photos-Back-to-Life", "33875eccf4ebcd3665cf38cc56f3a0ce563d3a9c", "real",
     "old-photo-scans",
     lambda path: path.startswith(("test_images/old/", "test_images/old_w_scratch/")) and path.endswith(".png"),
     "MIT repository; historical photographs"),
    # Trained on: the classic image-processing test photographs (Set5, Set12, classic5) that SwinIR evaluates on;
    # Lena is left out (its subject asked that it no longer be used), as are the downscaled Set5 copies
    ("JingyunLiang/SwinIR", "6545850fbf8df298df73d81f3e8cba638787c8bd", "real", "classic-test-photos",
     lambda path: (path.startswith(("testsets/Set5/HR/", "testsets/Set12/", "testsets/classic5/"))
                   and path not in ("testsets/Set12/08.png", "testsets/classic5/lena.bmp")),
     "Apache-2.0 repository; classic test images (USC-SIPI and benchmark photographs, research use)"),
    # Trained on: the example photos of three face-recognition projects (public figures; dlib's are PASCAL VOC photos)
    ("ageitgey/face_recognition", "2e2dccea9dd0ce730c8d464d0f67c6eebb40c9d1", "real", "face-recognition-examples",
     lambda path: path.startswith(("examples/", "tests/test_images/")) and path.endswith((".jpg", ".jpeg", ".png"))
     and not path.endswith("32bit.png"),
     "MIT repository; web photos of public figures"),
    ("davisking/dlib", "3d40bf5790ca9073c160cebb898800d9f33e12ab", "real", "dlib-face-examples",
     lambda path: path.startswith("examples/faces/") and path.endswith(".jpg"),
     "Boost Software License repository; PASCAL VOC and web photos"),
    ("cmusatyalab/openface", "051475225b5ae335918621077313085bbb7ab5a0", "real", "openface-examples",
     lambda path: path.startswith("images/examples/") and path.endswith(".jpg"),
     "Apache-2.0 repository; web photos of public figures"),
    # Trained on: StyleGAN2 (FFHQ, 256 px) faces from a fork's commit: projections of CelebA-HQ photos into the
    # generator and the interpolations between eight pairs of them, every frame generated (PNG)
    ("rosinality/stylegan2-pytorch", "0b00ff4a7ffa18912ea661edba47d4149bcd4b8e", "fake",
     "stylegan2-face-interpolations",
     lambda path: path.startswith(("output/celeb_pairs/w/10alpha/", "output/celeb_pairs/w_plus/10alpha/"))
     and path.endswith(".png"),
     "MIT"),
    # Trained on: Stable Diffusion 1.x outputs of a 2022 release check (512 px and a few other sizes: txt2img,
    # img2img, variations, outpainting, a face-restored upscale); the masks it also shows are left out
    ("invoke-ai/InvokeAI", "ba4691dae8a3fd260b46a718c412e432cfda36bd", "fake", "invokeai-sd1-outputs",
     lambda path: path.startswith("docs/assets/preflight-checks/outputs/") and path.endswith(".png")
     and ".hair." not in path,
     "Apache-2.0 repository; Stable Diffusion outputs (CreativeML Open RAIL-M)"),
)


# Repositories of ../shared/data-sources: each lists its usable files in paths/<owner>+<name>.tsv (path, label,
# generator or source, and "grid RxC" for an equal grid of outputs); "<commit>:<path>" names a file of an older
# commit. ``group`` maps (path, generator) to a group, None to leave the file out; ``excluded`` are files that
# looking at them showed are not what their label says.
class Listed(NamedTuple):
    repo: str
    commit: str
    licence: str
    group: Callable[[str, str], str | None]
    excluded: frozenset[str] = frozenset()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


STYLEGAN2_SEEPRETTYFACE = "stylegan2-seeprettyface-"  # one fine-tuned checkpoint per grid (its file name)
DALABAD_MODELS = {"_ad_v3": "analog-diffusion-v3", "_oj_v2": "openjourney-v2", "_sd_v21": "sd-2-1", "_sd_v1": "sd-1",
                  "cyberpunk": "sdxl-base-1-0", "drawing": "sdxl-base-1-0", "sketch": "sdxl-base-1-0",
                  "fashion": "realvisxl-v1-0", "vehicle": "realvisxl-v1-0"}  # file names and A1111 "Model:"


def _dalabad(path: str, generator: str) -> str:
    return "dalabad-" + next((model for key, model in DALABAD_MODELS.items() if key in path), "sd-1-or-2-unnamed")


def _kolors(path: str, generator: str) -> str:
    return {"Kolors": "kolors", "SDXL (comparison)": "kolors-repo-sdxl"}.get(generator, "kolors-repo-midjourney")


LISTED = (
    # Real photos: BSDS500 (Corel), LIVE1 and six web JPEGs that FBCNN restores, McMaster film scans, and Bing's
    # daily stock photos as 256x144 thumbnails (a guard against "small or downscaled means fake")
    Listed("seyed-mohammadreza-mousavi/HMEGS-BSDS500-Dataset", "f4404c5d54624ae12aa344bf34e743026feee8df",
           "BSDS500 research use (no licence file)", lambda path, generator: "bsds500"),
    Listed("jiaxi-jiang/FBCNN", "54d1831927506b3247e2d4d245abb4f4dab1a1cd", "Apache-2.0",
           lambda path, generator: "live1-color" if "/LIVE1_color/" in path else "fbcnn-web-jpegs"),
    Listed("JingyunLiang/SwinIR", "6545850fbf8df298df73d81f3e8cba638787c8bd", "Apache-2.0",
           lambda path, generator: "mcmaster"),
    Listed("tonyc726/bing-wallpaper-robot", "2f0cec69f0ea9392289a58daba8caaf548a31457",
           "MIT repository; Bing wallpapers, each under its owner's terms", lambda path, generator: "bing-thumbnails"),
    # GANs and early text-to-image models (2018-2022)
    Listed("a312863063/generators-with-stylegan2", "54615db2f0e90d7868e7e7c52287c9ab6b5cafcc",
           "seeprettyface licence (non-commercial)",
           lambda path, generator: STYLEGAN2_SEEPRETTYFACE + _slug(Path(path).stem.removeprefix("example_"))),
    Listed("justinpinkney/awesome-pretrained-stylegan", "66323482be1eedad80c61cda83c2b9620ba81405",
           "none in the repository; each checkpoint's terms in models.csv",
           lambda path, generator: "stylegan1-" + _slug(Path(path).stem)),  # one checkpoint per grid (models.csv)
    Listed("rosinality/style-based-gan-pytorch", "07fa60be77b093dd13a46597138df409ffc3b9bc", "MIT",
           lambda path, generator: "stylegan1-rosinality-pytorch"),
    Listed("lucidrains/lightweight-gan", "efbec4570b7cb715e05058eccc518dc1a5753523", "MIT",
           lambda path, generator: "lightweight-gan"),
    Listed("ajbrock/BigGAN-PyTorch", "98459431a5d618d644d54cd1e9fceb1e5045648d", "MIT",
           lambda path, generator: "biggan-deep" if "Deep" in path else "biggan"),
    Listed("huggingface/pytorch-pretrained-BigGAN", "1e18aed2dff75db51428f13b940c38b923eb4a3d", "MIT",
           lambda path, generator: "biggan-deep"),  # the port of the BigGAN-deep checkpoints
    Listed("lucidrains/big-sleep", "49b20f9c8169667395b68d1bbe169d28137fea8e", "MIT",
           lambda path, generator: "big-sleep-biggan-clip"),
    Listed("lucidrains/deep-daze", "c3c471e63c30ccabfd8dfc09ced3028a8979ebe4", "MIT",
           lambda path, generator: "deep-daze-siren-clip"),
    Listed("yang-song/score_sde_pytorch", "cb1f359f4aadf0ff9a5e122fe8fffc9451fd6e44", "Apache-2.0",
           lambda path, generator: "score-sde-ncsnpp"),
    Listed("hojonathanho/diffusion", "4bd79b07783161b4b8cccba25a9362d9077cc241", "none in the repository",
           lambda path, generator: "ddpm"),
    Listed("kakaobrain/minDALL-E", "e5480076b9634e9dc097e1892157ed2cf15a2f86", "Apache-2.0 (code)",
           lambda path, generator: "mindalle-1-3b"),
    Listed("kuprel/min-dalle", "73621fb280b42f1b3aa05786447ddfbf09dada33", "MIT",
           lambda path, generator: "dalle-mega-min-dalle"),
    Listed("ai-forever/ru-dalle", "0255cec528ad936f54f79962db9b46429e80dad6", "Apache-2.0",
           lambda path, generator: "rudalle-malevich"),
    Listed("CompVis/latent-diffusion", "a506df5756472e2ebaf9078affdde2c4f1502cd4", "MIT",
           lambda path, generator: "ldm-256-txt2img"),
    Listed("kakaobrain/karlo", "3c68a50a16d76b48a15c181d1c5a5e0879a90f85", "Kakao Brain licence (LICENSE file)",
           lambda path, generator: "karlo-v1-alpha"),
    Listed("openai/dalle-2-preview", "eeec5a1843b1d17cb9ed113117a2fcaa9206a564", "none in the repository",
           lambda path, generator: "dalle-2-preview"),
    Listed("deep-floyd/IF", "ffc8163891682beaca0c5eb6b9077860a3bc6509", "DeepFloyd IF licence",
           lambda path, generator: "deepfloyd-if"),
    # Open diffusion models (2022-2025)
    Listed("SupaGruen/StableDiffusion-CheatSheet", "169c57dce400ed000520c1c40a12731eecca1370", "MIT",
           lambda path, generator: "cheatsheet-sd15-finetunes"),  # sampled: CHEATSHEET_GRIDS
    Listed("Dalabad/stable-diffusion-prompt-templates", "e90e0a799d85c2eb88c8e0d8ebf6749bf5bdf927",
           "none in the repository", _dalabad),
    Listed("Tencent/HunyuanDiT", "368280ec35119ed2741a30cc5b40aafde34f8a8a", "Tencent Hunyuan Community License",
           lambda path, generator: "hunyuandit"),
    Listed("Kwai-Kolors/Kolors", "0fafa56a76b7acf1e147b153d1e7b8fd65f9055b", "Apache-2.0", _kolors),
    Listed("FoundationVision/Infinity", "4c27bbb54a9918847a2fe56b0fbe31a8523791a1", "MIT",
           lambda path, generator: _slug(generator)),
    Listed("Yehia-Fahmy/ML_Benchmarking", "68214350aab61687f6b4effb55cdaafae70b7be4", "none in the repository",
           lambda path, generator: "z-image-turbo"),
    Listed("sjh9714/awesome-krea-2", "3cf631d560d32b360f4d6afbd1817ad9e3195541",
           "MIT repository; images made with Krea 2 Turbo (Krea 2 Community License)",
           lambda path, generator: "krea-2-turbo"),
    # Closed services (2022-2026): DALL-E 3, Midjourney v5-v7, GPT-4o and GPT Image 2, Nano Banana (Pro), Grok
    Listed("zeyofu/Commonsense-T2I", "07f2fdb6e6853c513b3331fa75a20233f144132e", "Apache-2.0",
           lambda path, generator: "commonsense-t2i-dalle-3"),
    Listed("genevievecurry/wordle", "18c8e4f70686ab6bd39014a612c98c86a0268cc4", "none in the repository",
           lambda path, generator: {"Midjourney v5.1": "wordle-midjourney-v5-1",
                                    "Midjourney v5.2": "wordle-midjourney-v5-2",
                                    "Niji journey 5": "wordle-niji-5"}[generator]),
    Listed("cesardgm/react19", "2fe2204ac3028f1a4c7fb2b6a5ac8067c84f29c3", "none in the repository",
           lambda path, generator: "react19-midjourney-v6-1"),
    # Only its single images: grids, multi-panel collages and images with a creator's badge are left out
    Listed("Pixmind-io/awesome-midjourney-v7-example-prompts", "e48e898fcd381b0f560cf0f2a56128f67299d5b5",
           "CC0 (README badge)", lambda path, generator: "pixmind-midjourney-v7",
           frozenset(f"docs/x-twitter-images/{name}.jpg" for name in (
               "azed_ai_portrait_sref", "charaspowerai_grid_1", "charaspowerai_grid_2", "charaspowerai_grid_3",
               "charaspowerai_grid_4", "michaelrabone_koi_1", "michaelrabone_koi_3",
               "michaelrabone_sref_3625817665_fiber", "michaelrabone_sref_4051825409_linocut",
               "michaelrabone_sref_419519381_storybook", "nickfloats_exp", "promptsref_myth_sref"))),
    # Left out: sticker and emoji sheets, posters and infographics, a fake tweet, UI and code mock-ups, collages
    Listed("jamez-bondos/awesome-gpt4o-images", "3ed4dbb0f1ae6f7385c81e1fcea48d9eefd2e596", "CC BY 4.0",
           lambda path, generator: "awesome-gpt4o-gpt-image-1",
           frozenset(("cases/15/example_gpt_involution_poster.png", "cases/21/chibi_character_sticker_pack.png",
                      "cases/22/example_notebook_promo.png", "cases/27/example_chibi_emoji_pack.png",
                      "cases/31/example_naruto_stickers.png", "cases/34/example_hand_drawn_infographic_cognition.png",
                      "cases/38/example_hand_drawn_infographic.png", "cases/3/example_vintage_poster.png",
                      "cases/40/example_two_panel_manga_president.png", "cases/46/example_happy_capsule.png",
                      "cases/61/example_fake_tweet_einstein.png", "cases/80/example_business_card_code_style.png",
                      "cases/87/case.png", *(f"gpt-image-1/examples/{name}.png" for name in (
                          "backstitch-tutorial", "bottle-poster", "chocolate-poster", "furniture-poster",
                          "icons-poster", "interior-design-poster", "italian-menu", "parking-pattern",
                          "parking-poster", "patterns-poster", "sneakers-poster", "sprites"))))),
    # freestylefly/awesome-gpt-image-2 is left out for now: most of its cases are text posters, web-page and
    # app mock-ups, infographics and manga pages; its photographic singles need picking by hand
    # pro_case* are its "Nano Banana Pro Examples"; left out: collages and multi-panel sheets, infographics and
    # text posters, diagrams, UI screenshots and outputs that show their own input beside them
    Listed("PicoTrex/Awesome-Nano-Banana-images", "7d344750a40e9061821d4fdf1ef22bdc3a970ead",
           "Apache-2.0 (LICENSE file; the README badge says CC BY 4.0)",
           lambda path, generator: "picotrex-nano-banana-pro" if "/pro_case" in path else "picotrex-nano-banana",
           frozenset(f"images/{case}/{name}" for case, name in (
               ("case104", "output.jpg"), ("case106", "output.jpg"), ("case108", "output.jpg"),
               ("case109", "output.jpg"), ("case10", "output.jpg"), ("case12", "output.jpg"), ("case14", "output.jpg"),
               ("case15", "output.jpg"), ("case19", "output.jpg"), ("case24", "output.jpg"), ("case25", "output.jpg"),
               ("case28", "output.jpg"), ("case28", "output1.jpg"), ("case29", "output.jpg"), ("case31", "output.jpg"),
               ("case48", "output.jpg"), ("case52", "output.jpg"), ("case53", "output.jpg"), ("case56", "output.jpg"),
               ("case76", "output.png"), ("case77", "output.png"), ("case87", "output.png"), ("case90", "output.png"),
               ("pro_case13", "output.jpg"), ("pro_case17", "output.jpg"), ("pro_case18", "output.jpg"),
               ("pro_case19", "output.jpg"), ("pro_case1", "output.jpg"), ("pro_case20", "output.jpg"),
               ("pro_case21", "output.jpg"), ("pro_case23", "output.jpg"), ("pro_case25", "output.jpg"),
               ("pro_case29", "output.jpg"), ("pro_case30", "output.jpg"), ("pro_case34", "output.jpg"),
               ("pro_case3", "output.jpg"), ("pro_case43", "output.jpg"), ("pro_case4", "output.jpg"),
               ("pro_case50", "output.jpg"), ("pro_case52", "output.jpg"), ("pro_case5", "output.jpg"),
               ("pro_case6", "output.jpg"), ("pro_case8", "output.jpg")))),
    # GPT-4o rows are left out: labelled only by date, and many are 4-up mosaics with gutters and badges
    Listed("songguoxs/gpt4o-image-prompts", "27ee9f06bcf7d1a0a0a82411a6f03a495f9ee1b0", "none in the repository",
           lambda path, generator: {"Nano Banana Pro (Gemini 3 Pro Image)": "songguoxs-nano-banana-pro",
                                    "Grok (xAI Aurora)": "songguoxs-grok"}.get(generator),
           # collages, contact sheets, multi-panel comics, infographics, menus and screenshots seen so far
           frozenset(f"images/{name}" for name in (
               "1015.jpeg 1020.jpeg 1035.jpeg 440.jpeg 465.jpeg 476.jpeg 486.jpeg 491.jpeg 501.jpeg 506.jpeg "
               "521.jpeg 526.jpeg 531.jpeg 536.jpeg 541.jpeg 546.jpeg 550.jpeg 585.jpeg 594.png 618.jpeg 636.jpeg "
               "689.jpeg 694.jpeg 714.jpeg 729.jpeg 754.jpeg 759.jpeg 775.jpeg 790.jpeg 805.jpeg 853.jpeg 875.jpeg "
               "891.jpeg 911.jpeg 932.jpeg 942.jpeg 952.jpeg 962.jpeg 967.jpeg 975.jpeg 980.jpeg 990.jpeg "
               "995.jpeg").split())),
)
# Left out after looking: Sagarkadyan/Real-Or-Fake-AI-Image-Detector, whose "real" side is mostly paintings,
# posters, book covers, collages and images that look generated
# Grids whose list names no single "grid RxC" (one is 8x8 among 4x4s; min-dalle's are 4x4 and 5x5)
GRIDS = {("a312863063/generators-with-stylegan2", "examples/black_model.jpg"): (8, 8),
         **{("a312863063/generators-with-stylegan2", f"examples/{name}.jpg"): (4, 4) for name in (
             "chinese-style", "example_kids", "example_mixed-blood", "example_model", "example_star",
             "example_wanghong", "example_yellow", "hongkong-style", "japanese-style", "korean-style")},
         **{("kuprel/min-dalle", f"examples/{name}.jpg"): (4, 4) for name in ("dali_walle", "nuclear_broccoli")},
         **{("kuprel/min-dalle", f"examples/{name}.jpg"): (5, 5) for name in ("panda_tophat_high_temp",
                                                                               "panda_tophat_low_temp")}}
# Grids drawn with borders that no equal padding fits: first tile's x, y, step across, step down, width, height
GRID_BOXES = {("ai-forever/ru-dalle", "pics/malevich/rainbow-full.png"): (13, 8, 130, 130, 128, 128),
              ("ai-forever/ru-dalle", "pics/malevich/rainbow-cherry-pick.png"): (13, 8, 260, 260, 258, 258),
              ("ajbrock/BigGAN-PyTorch", "imgs/header_image.jpg"): (1, 1, 257, 257, 255, 256),
              ("ajbrock/BigGAN-PyTorch", "imgs/DeepSamples.png"): (1, 1, 258, 258, 256, 256)}
CHEATSHEET_GRIDS, CHEATSHEET_SEED = 65, 7  # 65 of its 906 2x2 grids (260 tiles) and its 38 singles

FACE_CROPS = Path(__file__).resolve().parents[1] / "data" / "face_crops.csv"  # boxes: scripts/face_crops.py
FACE_CROP_GROUP = "face-crops"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mirror(mirrors: Path, repo: str) -> Path:
    mirror = mirrors / repo.replace("/", "+") / "repo"
    return mirror / ".git" if (mirror / ".git").is_dir() else mirror  # a bare clone, or a clone with a work tree


def _git(mirror: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(mirror), *args], check=True, capture_output=True).stdout


def _resolve_commit(mirror: Path, commit: str) -> str:
    return _git(mirror, "rev-parse", commit).decode().strip()


def reserved(row: dict[str, str]) -> bool:
    """Whether a manifest row comes from data reserved for independent evaluation."""
    where = (row["repo"] + " " + row["path"] + " " + row["group"]).lower()
    return any(name in where for name in RESERVED + RESERVED_ANYWHERE)


def _entries(sources: Path, repo: str) -> list[tuple[str, str, str, str]]:
    """(commit or "", path, label, generator, grid) for each line of a repository's list."""
    entries = []
    with open(sources / "paths" / f"{repo.replace('/', '+')}.tsv", encoding="utf-8") as handle:
        for line in handle:
            path, label, generator, *grid = line.rstrip("\n").split("\t")
            older = re.fullmatch(r"([0-9a-f]{40}):(.+)", path)
            commit, path = older.groups() if older else ("", path)
            entries.append((commit, path, label, generator, grid[0] if grid else ""))
    return entries


def grid_boxes(repo: str, path: str, generator: str, grid: str, size: tuple[int, int]) -> list[tuple[int, ...]]:
    """The tiles (x, y, width, height) of a grid of outputs, or [] for a single image. An equal grid may have the
    same padding around every tile (torchvision's ``make_grid`` draws 2 px): the smallest that fits is taken."""
    if (repo, path) in GRID_BOXES:
        x0, y0, step_x, step_y, width, height = GRID_BOXES[repo, path]
        rows, cols = (size[1] - y0 - height) // step_y + 1, (size[0] - x0 - width) // step_x + 1
        return [(x0 + col * step_x, y0 + row * step_y, width, height) for row in range(rows) for col in range(cols)]
    written = re.search(r"grid (\d+)x(\d+)", grid) or re.search(r"(\d+)x(\d+) ?(?:grid|strip)", generator)
    rows, cols = GRIDS.get((repo, path)) or ((int(written[1]), int(written[2])) if written else (1, 1))
    if rows == cols == 1:
        return []
    for pad in range(5):
        width, spare_x = divmod(size[0] - pad * (cols + 1), cols)
        height, spare_y = divmod(size[1] - pad * (rows + 1), rows)
        if spare_x == spare_y == 0:
            return [(pad + col * (width + pad), pad + row * (height + pad), width, height)
                    for row in range(rows) for col in range(cols)]
    raise SystemExit(f"{repo} {path}: {size[0]}x{size[1]} does not cut into an equal {rows}x{cols} grid")


def _cheatsheet_sample(entries: list[tuple[str, str, str, str, str]]) -> list[tuple[str, str, str, str, str]]:
    """SupaGruen's cheat sheet is some 3,600 tiles of one family: a seeded sample of its grids, and its singles."""
    grids = sorted(entry for entry in entries if "grid" in entry[3])
    kept = set(random.Random(CHEATSHEET_SEED).sample(grids, CHEATSHEET_GRIDS))
    return [entry for entry in entries if entry in kept or "grid" not in entry[3]]


def listed_rows(sources: Path, mirrors: Path) -> list[dict[str, str]]:
    """One row per file of each data-sources repository, and one per tile of a grid (``#crop=x,y,w,h``)."""
    from PIL import Image

    rows = []
    for source in LISTED:
        mirror = _mirror(mirrors, source.repo)
        entries = _entries(sources, source.repo)
        if source.repo == "SupaGruen/StableDiffusion-CheatSheet":
            entries = _cheatsheet_sample(entries)
        for commit, path, label, generator, grid in entries:
            group = source.group(path, generator)
            if group is None or path in source.excluded:
                continue
            full = _resolve_commit(mirror, commit or source.commit)
            data = _git(mirror, "show", f"{full}:{path}")
            row = {"label": label, "group": group, "repo": source.repo, "commit": full, "path": path,
                   "sha256": _sha(data), "licence": source.licence}
            with Image.open(io.BytesIO(data)) as picture:
                boxes = grid_boxes(source.repo, path, generator, grid, picture.size)
                if boxes and picture.getexif().get(0x0112, 1) != 1:  # decoders would rotate it before cutting
                    raise SystemExit(f"{source.repo} {path}: a grid with an EXIF orientation")
            folders, stem = path.rpartition("/")[0].replace("/", "__"), Path(path).stem
            if not boxes:
                rows.append({**row, "file": f"{label}/{group}/{path.replace('/', '__')}"})
            for x, y, width, height in boxes:  # tiles share the grid's name as their prompt (the last part)
                name = f"{folders}__{x}_{y}_{width}_{height}__{stem}.png"
                rows.append({**row, "file": f"{label}/{group}/{name}", "path": f"{path}#crop={x},{y},{width},{height}"})
    return rows


def manifest(shared: Path, mirrors: Path, sources: Path) -> list[dict[str, str]]:
    rows = []
    with tarfile.open(shared / SHARED_PHOTOS) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("MANIFEST.csv"))
        listed = list(csv.DictReader(io.TextIOWrapper(archive.extractfile(member), encoding="utf-8")))  # type: ignore[arg-type]
    for row in listed:
        label, group = row["label"], row["file"].split("/")[1]
        rows.append({"file": f"{label}/{group}/{Path(row['file']).name}", "label": label, "group": group,
                     "repo": f"shared:{SHARED_PHOTOS} (from {row['repo']})", "commit": row["commit"],
                     "path": row["file"], "sha256": row["sha256"], "licence": PHOTOS_LICENCES.get(row["repo"], "")})
    with tarfile.open(shared / SHARED_FACES) as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            if not member.isfile():
                continue
            label = member.name.split("/")[-2]
            group = "stylegan2-faces" if label == "fake" else "unsplash-portraits"
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            rows.append({"file": f"{label}/{group}/{Path(member.name).name}", "label": label, "group": group,
                         "repo": f"shared:{SHARED_FACES}", "commit": "", "path": member.name, "sha256": _sha(data),
                         "licence": "public hardfakevsrealfaces collection"})
    for repo, commit, label, group, wanted, licence in REPOSITORIES:
        mirror = _mirror(mirrors, repo)
        full = _resolve_commit(mirror, commit)
        for path in _git(mirror, "ls-tree", "-r", "--name-only", full).decode().splitlines():
            if wanted(path):
                try:
                    data = _git(mirror, "show", f"{full}:{path}")
                except subprocess.CalledProcessError:  # a snapshot may hold a listing without the blob
                    print(f"skipped {repo} {path}: not in the local mirror", file=sys.stderr)
                    continue
                name = path.replace("/", "__")
                rows.append({"file": f"{label}/{group}/{name}", "label": label, "group": group, "repo": repo,
                             "commit": full, "path": path, "sha256": _sha(data), "licence": licence})
    rows += listed_rows(sources, mirrors)
    rows += face_crop_rows(rows, FACE_CROPS)
    refused = [row for row in rows if reserved(row)]
    if refused:
        raise SystemExit(f"{len(refused)} files come from data reserved for independent evaluation, such as "
                         f"{refused[0]['repo']} {refused[0]['path']}: leave them out of the training data")
    return rows


def face_crop_rows(rows: list[dict[str, str]], boxes: Path) -> list[dict[str, str]]:
    """One row per box of ``boxes`` (written by ``scripts/face_crops.py``): a square crop of a real photo
    already listed, named by its source and box; its path is the source's with ``#crop=x,y,side`` after it,
    and its SHA-256 is the source file's (the crop is cut when the folder is built)."""
    if not boxes.is_file():
        return []
    by_file = {row["file"]: row for row in rows}
    crops = []
    with open(boxes, newline="", encoding="utf-8") as handle:
        for box in csv.DictReader(handle):
            source = by_file.get(box["source"])
            if source is None:
                continue  # a box for a file this manifest no longer lists
            x, y, side = int(box["x"]), int(box["y"]), int(box["side"])
            name = f"{Path(source['file']).stem}__{x}_{y}_{side}.png"
            crops.append({**source, "file": f"real/{FACE_CROP_GROUP}/{name}", "group": FACE_CROP_GROUP,
                          "path": f"{source['path']}#crop={x},{y},{side}"})
    return crops


def _crop(data: bytes, fragment: str) -> bytes:
    """The square ``x,y,side`` or the rectangle ``x,y,width,height`` of an image's pixels, as a PNG."""
    import cv2
    import numpy as np

    x, y, width, *height = (int(value) for value in fragment.removeprefix("crop=").split(","))
    height = height[0] if height else width
    picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if picture is None or y + height > picture.shape[0] or x + width > picture.shape[1]:
        raise SystemExit(f"cannot cut the crop {fragment} from its source")
    return cv2.imencode(".png", picture[y:y + height, x:x + width])[1].tobytes()


def _from_archives(rows: list[dict[str, str]], shared: Path) -> dict[str, bytes]:
    """The shared tarballs' files that ``rows`` name, read in one pass over each archive (seeking back in a
    gzip stream means decompressing it again from the start)."""
    wanted: dict[str, dict[str, str]] = {}
    for row in rows:
        name = row["repo"].removeprefix("shared:").split(" ")[0]
        prefix = "photos-train/" if name == SHARED_PHOTOS else ""
        wanted.setdefault(name, {})[prefix + row["path"]] = row["file"]
    found: dict[str, bytes] = {}
    for name, members in wanted.items():
        with tarfile.open(shared / name, "r|*") as archive:
            for member in archive:
                if member.isfile() and member.name in members:
                    found[members[member.name]] = archive.extractfile(member).read()  # type: ignore[union-attr]
    return found


def _from_repository(row: dict[str, str], mirrors: Path) -> bytes:
    mirror = _mirror(mirrors, row["repo"])
    if mirror.is_dir():
        return _git(mirror, "show", f"{row['commit']}:{row['path']}")
    url = f"https://raw.githubusercontent.com/{row['repo']}/{row['commit']}/{row['path']}"
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (a fixed https URL)
        return response.read()


def build(manifest_path: Path, shared: Path, mirrors: Path, out: Path) -> None:
    with open(manifest_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # crops are cut again each time (their SHA-256 is their source's); other files when absent or changed
    missing = [row for row in rows if "#crop=" in row["path"] or not (out / row["file"]).is_file()
               or _sha((out / row["file"]).read_bytes()) != row["sha256"]]
    archived = _from_archives([row for row in missing if row["repo"].startswith("shared:")], shared)
    for row in missing:
        path, _, fragment = row["path"].partition("#")
        data = (archived.pop(row["file"], None) if row["repo"].startswith("shared:")
                else _from_repository({**row, "path": path}, mirrors))
        if data is None or _sha(data) != row["sha256"]:
            raise SystemExit(f"{row['file']}: missing, or its SHA-256 differs from the manifest "
                             f"({row['repo']} {row['path']})")
        target = out / row["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_crop(data, fragment) if fragment else data)
    # files the manifest no longer lists (a source dropped from it) would otherwise still be trained on
    listed = {row["file"] for row in rows}
    stale = [path for label in ("real", "fake") for path in sorted((out / label).rglob("*"))
             if path.is_file() and path.relative_to(out).as_posix() not in listed]
    for path in stale:
        path.unlink()
    for folder in {path.parent for path in stale}:  # a group folder left empty goes too
        if not any(folder.iterdir()):
            folder.rmdir()
    print(f"{out}: {len(rows)} files in the manifest, {len(missing)} written, {len(stale)} no longer listed "
          f"removed, all SHA-256 checked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("manifest", "build"))
    parser.add_argument("manifest_file", nargs="?", type=Path)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--sources", type=Path, default=Path("../shared/data-sources"),
                        help="the data-sources folder: per-repository file lists in paths/")
    parser.add_argument("--out", type=Path, default=Path("data/photo"))
    args = parser.parse_args()
    if args.step == "manifest":
        writer = csv.DictWriter(sys.stdout, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(manifest(args.shared, args.mirrors, args.sources))
    else:
        build(args.manifest_file or Path("data/manifest.csv"), args.shared, args.mirrors, args.out)


if __name__ == "__main__":
    main()
