# ruff: noqa: E501  (the photo table: one photo per line reads better than wrapped)
#!/usr/bin/env python3
"""Build a deterministic offline photo library for the photo-search evaluation.

Usage: /work/main/.venv/bin/python build_folder.py --out DIR

Sources: scikit-image `skimage.data` images that ship with the package (no pooch
download), scikit-learn `load_sample_images()` (china.jpg, flower.jpg), and
images rendered here with Pillow (menus, signs, receipts, whiteboards; CJK text
uses Noto Sans CJK from /usr/share/fonts/opentype/noto when present).
EXIF (Make, Model, DateTime, DateTimeOriginal, GPS) is written with Pillow.
All files get mtime 2026-12-01T00:00:00Z (the "import date"), so file times
never fall into any query's date range.
Writes manifest.jsonl (path, source, what it shows, EXIF written) to --manifest
(default: manifest.jsonl next to this script; pass --manifest '' to skip).
"""

import argparse
import calendar
import json
import os
import shutil

import numpy as np
import skimage.data as skd
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps
from sklearn.datasets import load_sample_images

HERE = os.path.dirname(os.path.abspath(__file__))
LATIN = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LATIN_B = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
HAND = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
CJK_B = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
IMPORT_MTIME = calendar.timegm((2026, 12, 1, 0, 0, 0))


# ---------------------------------------------------------------- fonts
_sc_index = {}


def font(path, size):
    if path in (CJK, CJK_B):
        if not os.path.exists(path):
            raise SystemExit("Noto CJK font missing: " + path)
        if path not in _sc_index:
            _sc_index[path] = 0
            for i in range(10):
                try:
                    f = ImageFont.truetype(path, 12, index=i)
                except OSError:
                    break
                if f.getname()[0].endswith(" SC"):
                    _sc_index[path] = i
                    break
        return ImageFont.truetype(path, size, index=_sc_index[path])
    return ImageFont.truetype(path, size)


# ---------------------------------------------------------------- sources
def to_rgb(a):
    a = np.asarray(a)
    if a.dtype == bool:
        a = (a * 255).astype(np.uint8)
    if a.dtype != np.uint8:
        a = (255 * (a - a.min()) / max(1e-9, float(a.max() - a.min()))).astype(np.uint8)
    im = Image.fromarray(a)
    if im.mode == "RGBA":
        bg = Image.new("RGB", im.size, "white")
        bg.paste(im, mask=im.split()[3])
        return bg
    return im.convert("RGB")


_sk = load_sample_images()
_sk_by = {os.path.basename(f): im for f, im in zip(_sk.filenames, _sk.images)}

REAL = {
    "astronaut": lambda: to_rgb(skd.astronaut()),
    "camera": lambda: to_rgb(skd.camera()),
    "chelsea": lambda: to_rgb(skd.chelsea()),
    "coffee": lambda: to_rgb(skd.coffee()),
    "rocket": lambda: to_rgb(skd.rocket()),
    "horse": lambda: to_rgb(~skd.horse()),  # black horse on white
    "page": lambda: to_rgb(skd.page()),
    "text": lambda: to_rgb(skd.text()),
    "coins": lambda: to_rgb(skd.coins()),
    "clock": lambda: to_rgb(skd.clock()),
    "moon": lambda: to_rgb(skd.moon()),
    "brick": lambda: to_rgb(skd.brick()),
    "grass": lambda: to_rgb(skd.grass()),
    "gravel": lambda: to_rgb(skd.gravel()),
    "hubble": lambda: to_rgb(skd.hubble_deep_field()),
    "ihc": lambda: to_rgb(skd.immunohistochemistry()),
    "retina": lambda: to_rgb(skd.retina()),
    "cell": lambda: to_rgb(skd.cell()),
    "logo": lambda: to_rgb(skd.logo()),
    "colorwheel": lambda: to_rgb(skd.colorwheel()),
    "motorcycle_left": lambda: to_rgb(skd.stereo_motorcycle()[0]),
    "motorcycle_right": lambda: to_rgb(skd.stereo_motorcycle()[1]),
    "china": lambda: to_rgb(_sk_by["china.jpg"]),
    "flower": lambda: to_rgb(_sk_by["flower.jpg"]),
}


# ---------------------------------------------------------------- rendering
def card(size, bg, lines, pad=30):
    """lines: list of (text, fontpath, size, fill, align)"""
    im = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(im)
    y = pad
    W = size[0]
    for text, fp, sz, fill, align in lines:
        f = font(fp, sz)
        if text:
            w = d.textlength(text, font=f)
            x = pad if align == "l" else (W - w) / 2 if align == "c" else W - pad - w
            d.text((x, y), text, font=f, fill=fill)
        y += int(sz * 1.45)
    return im


def photoize(im, seed, angle=3.0, bg=(110, 100, 90), noise=6.0, blur=0.6):
    """Make a rendered card look like a phone photo of it: margin, rotation, noise."""
    rng = np.random.default_rng(seed)
    W, H = im.size
    canvas = Image.new("RGB", (int(W * 1.15), int(H * 1.15)), bg)
    canvas.paste(im, ((canvas.size[0] - W) // 2, (canvas.size[1] - H) // 2))
    canvas = canvas.rotate(angle, resample=Image.BICUBIC, fillcolor=bg)
    canvas = canvas.filter(ImageFilter.GaussianBlur(blur))
    a = np.asarray(canvas).astype(np.float32)
    # uneven lighting
    yy, xx = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
    light = 0.85 + 0.2 * (xx / a.shape[1])
    a = a * light[..., None] + rng.normal(0, noise, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def r_menu_trattoria():
    L, B = LATIN, LATIN_B
    return card(
        (620, 760),
        (250, 244, 228),
        [
            ("LUIGI'S TRATTORIA", B, 40, (120, 20, 20), "c"),
            ("Menu", L, 28, (60, 40, 20), "c"),
            ("", L, 14, 0, "l"),
            ("Margherita Pizza ........ $12.50", L, 26, (30, 30, 30), "l"),
            ("Spaghetti Carbonara ..... $14.00", L, 26, (30, 30, 30), "l"),
            ("Lasagna al Forno ........ $15.50", L, 26, (30, 30, 30), "l"),
            ("Caesar Salad ............ $9.00", L, 26, (30, 30, 30), "l"),
            ("Tiramisu ................ $6.50", L, 26, (30, 30, 30), "l"),
            ("Espresso ................ $2.50", L, 26, (30, 30, 30), "l"),
            ("", L, 14, 0, "l"),
            ("Open daily 11am - 10pm", L, 22, (90, 60, 40), "c"),
        ],
    )


def r_menu_paris():
    L, B = LATIN, LATIN_B
    return card(
        (600, 700),
        (20, 20, 20),
        [
            ("LE PETIT BISTRO", B, 40, (240, 220, 160), "c"),
            ("Menu du jour", L, 28, (240, 240, 240), "c"),
            ("", L, 14, 0, "l"),
            ("Soupe à l'oignon ........ 9 €", L, 26, (240, 240, 240), "l"),
            ("Croque-monsieur ........ 12 €", L, 26, (240, 240, 240), "l"),
            ("Steak frites ........... 19 €", L, 26, (240, 240, 240), "l"),
            ("Crème brûlée ............ 7 €", L, 26, (240, 240, 240), "l"),
            ("Café crème .............. 4 €", L, 26, (240, 240, 240), "l"),
        ],
    )


def r_menu_beijing():
    C, CB = CJK, CJK_B
    return card(
        (600, 720),
        (255, 250, 235),
        [
            ("老北京炸酱面馆", CB, 46, (170, 20, 20), "c"),
            ("菜 单", C, 32, (60, 30, 10), "c"),
            ("", C, 12, 0, "l"),
            ("炸酱面 ............ ¥28", C, 30, (30, 30, 30), "l"),
            ("北京烤鸭 ......... ¥168", C, 30, (30, 30, 30), "l"),
            ("猪肉白菜饺子 ...... ¥32", C, 30, (30, 30, 30), "l"),
            ("卤煮火烧 .......... ¥35", C, 30, (30, 30, 30), "l"),
            ("冰糖葫芦 .......... ¥10", C, 30, (30, 30, 30), "l"),
            ("豆浆 ............... ¥5", C, 30, (30, 30, 30), "l"),
        ],
    )


def r_menu_seafood():
    L, B, C = LATIN, LATIN_B, CJK
    return card(
        (640, 680),
        (230, 245, 250),
        [
            ("OCEAN BREEZE SEAFOOD GRILL", B, 32, (10, 70, 120), "c"),
            ("海风海鲜烧烤", C, 30, (10, 70, 120), "c"),
            ("", L, 12, 0, "l"),
            ("Grilled Lobster 烤龙虾 ...... ¥298", C, 26, (20, 20, 20), "l"),
            ("Garlic Scallops 蒜蓉扇贝 .... ¥88", C, 26, (20, 20, 20), "l"),
            ("Coconut Chicken 椰子鸡 ...... ¥128", C, 26, (20, 20, 20), "l"),
            ("Mango Sticky Rice 芒果糯米饭 ¥35", C, 26, (20, 20, 20), "l"),
            ("Fresh Coconut 鲜椰子 ........ ¥15", C, 26, (20, 20, 20), "l"),
        ],
    )


def r_menu_nye():
    C, CB = CJK, CJK_B
    return card(
        (560, 700),
        (180, 20, 25),
        [
            ("年夜饭菜单", CB, 48, (255, 215, 0), "c"),
            ("2023 兔年", C, 28, (255, 230, 180), "c"),
            ("", C, 12, 0, "l"),
            ("红烧鱼 · 年年有余", C, 32, (255, 240, 220), "c"),
            ("白切鸡 · 大吉大利", C, 32, (255, 240, 220), "c"),
            ("猪肉饺子 · 招财进宝", C, 32, (255, 240, 220), "c"),
            ("八宝饭 · 甜甜蜜蜜", C, 32, (255, 240, 220), "c"),
            ("年糕 · 步步高升", C, 32, (255, 240, 220), "c"),
        ],
    )


def r_sign_rivoli():
    im = Image.new("RGB", (700, 300), (30, 60, 130))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((12, 12, 688, 288), radius=24, outline=(240, 240, 240), width=8)
    d.rounded_rectangle((30, 30, 670, 270), radius=16, outline=(30, 160, 90), width=4)
    d.text((350, 80), "1er Arrt", font=font(LATIN, 30), fill="white", anchor="mm")
    d.text((350, 150), "RUE DE", font=font(LATIN, 40), fill="white", anchor="mm")
    d.text((350, 215), "RIVOLI", font=font(LATIN_B, 72), fill="white", anchor="mm")
    return im


def r_sign_wangfujing():
    im = Image.new("RGB", (760, 300), (20, 70, 150))
    d = ImageDraw.Draw(im)
    d.rectangle((10, 10, 750, 290), outline="white", width=6)
    d.text((380, 110), "王府井大街", font=font(CJK_B, 96), fill="white", anchor="mm")
    d.text((380, 220), "Wangfujing Dajie", font=font(LATIN, 40), fill="white", anchor="mm")
    d.text((60, 250), "← 东单", font=font(CJK, 28), fill="white", anchor="lm")
    d.text((700, 250), "天安门 →", font=font(CJK, 28), fill="white", anchor="rm")
    return im


def r_sign_beach():
    im = Image.new("RGB", (720, 420), (250, 250, 245))
    d = ImageDraw.Draw(im)
    d.rectangle((8, 8, 712, 412), outline=(0, 110, 160), width=10)
    d.text((360, 80), "三亚湾海滩", font=font(CJK_B, 70), fill=(0, 110, 160), anchor="mm")
    d.text((360, 160), "SANYA BAY BEACH", font=font(LATIN_B, 44), fill=(0, 110, 160), anchor="mm")
    d.text((360, 250), "18:00 后禁止游泳", font=font(CJK, 40), fill=(200, 30, 30), anchor="mm")
    d.text((360, 310), "No swimming after 6 pm", font=font(LATIN, 34), fill=(200, 30, 30), anchor="mm")
    d.text((360, 370), "救生员电话 Lifeguard: 0898-8888 1234", font=font(CJK, 24), fill=(40, 40, 40), anchor="mm")
    return im


def r_wifi_note():
    return card(
        (520, 380),
        (255, 255, 255),
        [
            ("Sunny Beach Hotel", LATIN_B, 34, (0, 90, 140), "c"),
            ("Welcome! Room 1208", LATIN, 24, (60, 60, 60), "c"),
            ("", LATIN, 10, 0, "l"),
            ("Wi-Fi: SunnyBeach_Guest", HAND, 28, (20, 20, 20), "l"),
            ("Password: seaview2024", HAND, 28, (20, 20, 20), "l"),
            ("Breakfast 7:00 - 10:30", LATIN, 24, (60, 60, 60), "l"),
        ],
    )


def r_whiteboard_en():
    im = Image.new("RGB", (900, 600), (246, 248, 250))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, 899, 599), outline=(150, 150, 155), width=14)
    blue, red, black = (20, 60, 200), (200, 30, 30), (30, 30, 30)
    f = font(HAND, 40)
    d.text((50, 40), "Q2 PLANNING", font=font(LATIN_B, 52), fill=blue)
    d.text((50, 130), "1. Launch photo search beta", font=f, fill=black)
    d.text((50, 190), "2. Fix login bug on Android", font=f, fill=black)
    d.text((50, 250), "3. Hire a product designer", font=f, fill=black)
    d.text((50, 310), "4. Budget review w/ finance", font=f, fill=black)
    d.text((50, 420), "DEADLINE: April 15!", font=font(LATIN_B, 48), fill=red)
    d.ellipse((560, 400, 880, 500), outline=red, width=5)
    return im


def r_whiteboard_zh():
    im = Image.new("RGB", (900, 600), (246, 248, 250))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, 899, 599), outline=(150, 150, 155), width=14)
    f = font(CJK, 44)
    d.text((50, 30), "周会议程", font=font(CJK_B, 60), fill=(20, 60, 200))
    d.text((50, 140), "1. 新版本发布时间", font=f, fill=(30, 30, 30))
    d.text((50, 210), "2. 第三季度预算", font=f, fill=(30, 30, 30))
    d.text((50, 280), "3. 招聘两名工程师", font=f, fill=(30, 30, 30))
    d.text((50, 350), "4. 客户反馈汇总", font=f, fill=(30, 30, 30))
    d.text((50, 460), "下次开会：周五下午三点", font=font(CJK_B, 44), fill=(200, 30, 30))
    return im


def r_receipt_taxi():
    return card(
        (420, 640),
        (252, 252, 248),
        [
            ("YELLOW CAB NYC", LATIN_B, 30, (20, 20, 20), "c"),
            ("Medallion 7J42", HAND, 20, (40, 40, 40), "c"),
            ("05/18/2024  18:42", HAND, 20, (40, 40, 40), "c"),
            ("", HAND, 10, 0, "l"),
            ("From: JFK Airport T4", HAND, 20, (40, 40, 40), "l"),
            ("To:   Times Square", HAND, 20, (40, 40, 40), "l"),
            ("Fare          $18.50", HAND, 22, (20, 20, 20), "l"),
            ("Tolls          $1.40", HAND, 22, (20, 20, 20), "l"),
            ("Tip            $3.50", HAND, 22, (20, 20, 20), "l"),
            ("TOTAL         $23.40", LATIN_B, 26, (0, 0, 0), "l"),
            ("", HAND, 10, 0, "l"),
            ("Thank you for riding!", HAND, 20, (40, 40, 40), "c"),
        ],
        pad=24,
    )


def r_receipt_grocery():
    return card(
        (420, 700),
        (252, 252, 248),
        [
            ("FRESHMART SUPERMARKET", LATIN_B, 26, (20, 20, 20), "c"),
            ("123 Maple Ave, Springfield", HAND, 18, (40, 40, 40), "c"),
            ("09/02/2024 17:05", HAND, 18, (40, 40, 40), "c"),
            ("", HAND, 8, 0, "l"),
            ("Whole Milk 1gal     3.49", HAND, 21, (20, 20, 20), "l"),
            ("Sourdough Bread     2.99", HAND, 21, (20, 20, 20), "l"),
            ("Bananas 1.2lb       1.20", HAND, 21, (20, 20, 20), "l"),
            ("Eggs Large 12ct     4.29", HAND, 21, (20, 20, 20), "l"),
            ("Coffee Beans        9.99", HAND, 21, (20, 20, 20), "l"),
            ("SUBTOTAL           21.96", HAND, 21, (20, 20, 20), "l"),
            ("TAX                 0.88", HAND, 21, (20, 20, 20), "l"),
            ("TOTAL             $22.84", LATIN_B, 24, (0, 0, 0), "l"),
            ("VISA **** 4821", HAND, 20, (40, 40, 40), "l"),
            ("THANK YOU!", LATIN_B, 22, (20, 20, 20), "c"),
        ],
        pad=24,
    )


def r_receipt_zh():
    return card(
        (440, 620),
        (255, 253, 245),
        [
            ("老北京炸酱面馆", CJK_B, 34, (20, 20, 20), "c"),
            ("餐饮发票", CJK, 26, (170, 20, 20), "c"),
            ("2024-06-08 19:21", HAND, 20, (40, 40, 40), "c"),
            ("", CJK, 8, 0, "l"),
            ("北京烤鸭 x1      168.00", CJK, 22, (20, 20, 20), "l"),
            ("炸酱面 x1         28.00", CJK, 22, (20, 20, 20), "l"),
            ("猪肉白菜饺子 x1   32.00", CJK, 22, (20, 20, 20), "l"),
            ("豆浆 x1            5.00", CJK, 22, (20, 20, 20), "l"),
            ("合计：¥233.00", CJK_B, 28, (0, 0, 0), "l"),
            ("支付方式：微信支付", CJK, 22, (40, 40, 40), "l"),
            ("谢谢惠顾，欢迎再来", CJK, 22, (40, 40, 40), "c"),
        ],
        pad=24,
    )


def r_online_order():
    return card(
        (760, 520),
        (255, 255, 255),
        [
            ("Order confirmation", LATIN_B, 34, (20, 20, 20), "l"),
            ("Order #48213  -  January 14, 2025", LATIN, 22, (90, 90, 90), "l"),
            ("", LATIN, 8, 0, "l"),
            ("Noise-cancelling headphones      $199.00", HAND, 24, (20, 20, 20), "l"),
            ("USB-C charging cable (2m)         $12.99", HAND, 24, (20, 20, 20), "l"),
            ("Shipping                           FREE", HAND, 24, (20, 20, 20), "l"),
            ("Order total                     $211.99", LATIN_B, 26, (0, 0, 0), "l"),
            ("", LATIN, 8, 0, "l"),
            ("Arriving Friday, January 17", LATIN, 24, (0, 130, 60), "l"),
        ],
    )


def r_chat_note():
    return card(
        (540, 900),
        (237, 237, 237),
        [
            ("备忘录", CJK_B, 40, (20, 20, 20), "l"),
            ("2024年3月5日 20:15", CJK, 22, (120, 120, 120), "l"),
            ("", CJK, 10, 0, "l"),
            ("下班记得买：", CJK, 32, (20, 20, 20), "l"),
            ("· 牛奶 两盒", CJK, 32, (20, 20, 20), "l"),
            ("· 鸡蛋 一打", CJK, 32, (20, 20, 20), "l"),
            ("· 猫粮", CJK, 32, (20, 20, 20), "l"),
            ("· 给妈妈打电话", CJK, 32, (20, 20, 20), "l"),
        ],
    )


def r_boarding_pass():
    im = card(
        (820, 380),
        (255, 255, 255),
        [
            ("AIR CHINA  中国国际航空", CJK_B, 30, (180, 20, 30), "l"),
            ("BOARDING PASS", LATIN_B, 26, (60, 60, 60), "l"),
            ("PEK  Beijing  →  CDG  Paris", LATIN_B, 34, (20, 20, 20), "l"),
            ("Flight CA933   Date 12JUN2019   Seat 32A", HAND, 24, (20, 20, 20), "l"),
            ("Passenger  LI/WEI   Gate E17   Boarding 13:05", HAND, 22, (20, 20, 20), "l"),
        ],
    )
    d = ImageDraw.Draw(im)
    rng = np.random.default_rng(933)
    x = 560
    for w in rng.integers(1, 5, 50):
        d.rectangle((x, 300, x + int(w), 360), fill="black")
        x += int(w) + 3
    return im


def r_parking():
    im = Image.new("RGB", (600, 600), (250, 200, 20))
    d = ImageDraw.Draw(im)
    d.text((300, 150), "P2", font=font(LATIN_B, 200), fill=(20, 20, 20), anchor="mm")
    d.text((300, 340), "LEVEL 2", font=font(LATIN_B, 60), fill=(20, 20, 20), anchor="mm")
    d.text((300, 430), "ROW C", font=font(LATIN_B, 70), fill=(20, 20, 20), anchor="mm")
    d.text((300, 530), "B2 停车场 C区", font=font(CJK, 44), fill=(20, 20, 20), anchor="mm")
    return im


def r_cny():
    im = Image.new("RGB", (640, 800), (200, 16, 30))
    d = ImageDraw.Draw(im)
    d.polygon([(320, 60), (560, 300), (320, 540), (80, 300)], fill=(220, 30, 40), outline=(255, 215, 0))
    d.text((320, 300), "福", font=font(CJK_B, 220), fill=(255, 215, 0), anchor="mm")
    d.text((320, 640), "新春快乐", font=font(CJK_B, 72), fill=(255, 215, 0), anchor="mm")
    d.text((320, 740), "恭喜发财", font=font(CJK, 48), fill=(255, 230, 160), anchor="mm")
    return im


def r_mooncake():
    im = Image.new("RGB", (700, 520), (120, 20, 30))
    d = ImageDraw.Draw(im)
    d.ellipse((40, 40, 300, 300), fill=(250, 230, 170))
    d.text((170, 170), "月", font=font(CJK_B, 130), fill=(150, 100, 40), anchor="mm")
    d.text((490, 120), "中秋快乐", font=font(CJK_B, 64), fill=(255, 215, 120), anchor="mm")
    d.text((490, 220), "莲蓉蛋黄月饼", font=font(CJK, 40), fill=(255, 230, 180), anchor="mm")
    d.text((350, 400), "花好月圆 · 人月两团圆", font=font(CJK, 44), fill=(255, 215, 120), anchor="mm")
    return im


RENDER = {
    "menu_trattoria": r_menu_trattoria,
    "menu_paris": r_menu_paris,
    "menu_beijing": r_menu_beijing,
    "menu_seafood": r_menu_seafood,
    "menu_nye": r_menu_nye,
    "sign_rivoli": r_sign_rivoli,
    "sign_wangfujing": r_sign_wangfujing,
    "sign_beach": r_sign_beach,
    "wifi_note": r_wifi_note,
    "whiteboard_en": r_whiteboard_en,
    "whiteboard_zh": r_whiteboard_zh,
    "receipt_taxi": r_receipt_taxi,
    "receipt_grocery": r_receipt_grocery,
    "receipt_zh": r_receipt_zh,
    "online_order": r_online_order,
    "chat_note": r_chat_note,
    "boarding_pass": r_boarding_pass,
    "parking": r_parking,
    "cny": r_cny,
    "mooncake": r_mooncake,
}


# ---------------------------------------------------------------- transforms
def crop(fx0, fy0, fx1, fy1):
    def f(im):
        W, H = im.size
        return im.crop((int(W * fx0), int(H * fy0), int(W * fx1), int(H * fy1)))

    return f


def flip(im):
    return ImageOps.mirror(im)


def gray(im):
    return ImageOps.grayscale(im).convert("RGB")


def warm(im):
    a = np.asarray(im).astype(np.float32)
    a[..., 0] *= 1.12
    a[..., 2] *= 0.85
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def cool(im):
    a = np.asarray(im).astype(np.float32)
    a[..., 0] *= 0.88
    a[..., 2] *= 1.12
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def bright(im):
    return ImageEnhance.Brightness(im).enhance(1.25)


def resize(scale):
    def f(im):
        return im.resize((max(8, int(im.width * scale)), max(8, int(im.height * scale))), Image.LANCZOS)

    return f


def rot(deg):
    def f(im):
        return im.rotate(deg, resample=Image.BICUBIC, expand=False, fillcolor=(0, 0, 0))

    return f


def photo(seed, angle=3.0):
    def f(im):
        return photoize(im, seed, angle=angle)

    return f


def invert(im):
    return ImageOps.invert(im)


def side_by_side(*names):
    def f(_):
        ims = [REAL[n]() for n in names]
        H = 400
        ims = [im.resize((int(im.width * H / im.height), H), Image.LANCZOS) for im in ims]
        out = Image.new("RGB", (sum(i.width for i in ims) + 10 * (len(ims) + 1), H + 20), "white")
        x = 10
        for i in ims:
            out.paste(i, (x, 10))
            x += i.width + 10
        return out

    return f


# ---------------------------------------------------------------- places / cameras
PLACES = {
    "paris": (48.8606, 2.3376, "Paris, France"),
    "beijing": (39.9163, 116.3972, "Beijing, China"),
    "sanya": (18.2528, 109.5120, "Sanya Bay beach, Hainan, China"),
    "ksc": (28.5729, -80.6490, "Kennedy Space Center, Florida, USA"),
    "shanghai": (31.2304, 121.4737, "Shanghai, China"),
    "nyc": (40.7580, -73.9855, "New York City, USA"),
}
CAMERAS = {
    "iphonexs": ("Apple", "iPhone XS"),
    "iphone12": ("Apple", "iPhone 12"),
    "iphone14": ("Apple", "iPhone 14 Pro"),
    "sony": ("SONY", "ILCE-7M3"),
    "huawei": ("HUAWEI", "ELE-AL00"),  # Huawei P30
    "canon": ("Canon", "Canon EOS 5D Mark IV"),
    "nikon": ("NIKON CORPORATION", "NIKON D750"),
    "pixel": ("Google", "Pixel 7"),
}


# ---------------------------------------------------------------- the library
# (relpath, source, [transforms], what it shows, camera or None, datetime or None, place or None)
E = []


def add(path, src, tf, shows, cam=None, dt=None, place=None):
    E.append(dict(path=path, src=src, tf=tf, shows=shows, cam=cam, dt=dt, place=place))


P = "Paris 2019/"
add(P + "IMG_0412.JPG", "coffee", [], "a cup of coffee on a saucer (cafe)", "iphonexs", "2019-06-13 09:12:40", "paris")
add(
    P + "IMG_0413.JPG",
    "coffee",
    [crop(0.1, 0.05, 0.8, 0.95)],
    "cup of coffee, closer crop (near-duplicate of IMG_0412)",
    "iphonexs",
    "2019-06-13 09:12:52",
    "paris",
)
add(
    P + "IMG_0420.JPG",
    "sign_rivoli",
    [photo(420, -2.5)],
    "blue Paris street sign 'RUE DE RIVOLI, 1er Arrt'",
    "iphonexs",
    "2019-06-13 14:05:11",
    "paris",
)
add(P + "IMG_0431.JPG", "flower", [], "close-up of an orange dahlia flower", "iphonexs", "2019-06-14 11:30:02", "paris")
add(
    P + "IMG_0432.JPG",
    "flower",
    [warm, crop(0.05, 0.0, 0.95, 1.0)],
    "same flower, warmer colours (near-duplicate)",
    "iphonexs",
    "2019-06-14 11:30:09",
    "paris",
)
add(
    P + "IMG_0440.JPG",
    "menu_paris",
    [photo(440, 2.0)],
    "blackboard-style menu 'LE PETIT BISTRO - Menu du jour' (soupe a l'oignon, croque-monsieur, steak frites, creme brulee)",
    "iphonexs",
    "2019-06-14 20:10:33",
    "paris",
)
add(
    P + "boarding pass.png",
    "boarding_pass",
    [],
    "screenshot of Air China boarding pass PEK Beijing -> CDG Paris, flight CA933, 12JUN2019, seat 32A",
    None,
    None,
    None,
)

B = "2024 beach trip/"
add(
    B + "DSC01021.JPG",
    "sign_beach",
    [photo(1021, 1.5)],
    "beach sign '三亚湾海滩 SANYA BAY BEACH', no swimming after 6 pm",
    "sony",
    "2024-07-20 16:02:15",
    "sanya",
)
add(
    B + "DSC01030.JPG",
    "flower",
    [flip, bright],
    "flower (mirrored, brighter) - near-duplicate of the Paris flower",
    "sony",
    "2024-07-21 10:15:40",
    "sanya",
)
add(
    B + "DSC01035.JPG",
    "wifi_note",
    [photo(1035, -4.0)],
    "hotel card 'Sunny Beach Hotel' Wi-Fi SunnyBeach_Guest password seaview2024, room 1208",
    "sony",
    "2024-07-21 13:40:00",
    "sanya",
)
add(
    B + "DSC01042.JPG",
    "menu_seafood",
    [photo(1042, 2.5)],
    "bilingual menu 'OCEAN BREEZE SEAFOOD GRILL 海风海鲜烧烤' (lobster, scallops, coconut chicken, mango sticky rice)",
    "sony",
    "2024-07-22 19:31:27",
    "sanya",
)
add(
    B + "DSC01050.JPG",
    "gravel",
    [warm, crop(0, 0, 0.7, 0.7)],
    "pebbles / gravel ground texture (warm tone)",
    "sony",
    "2024-07-23 08:05:00",
    "sanya",
)
add(
    B + "DSC01058.JPG",
    "moon",
    [],
    "the moon (grayscale close-up of lunar surface)",
    "sony",
    "2024-07-22 22:10:45",
    "sanya",
)

F = "家庭/2023年春节/"
add(
    F + "DSC0001.JPG",
    "cny",
    [photo(1, 1.0)],
    "red Chinese New Year decoration with 福, 新春快乐, 恭喜发财",
    "huawei",
    "2023-01-21 20:03:00",
    "beijing",
)
add(
    F + "DSC0002.JPG",
    "china",
    [],
    "traditional Chinese pagoda tower on a hill above a lake (Summer Palace style)",
    "huawei",
    "2023-01-22 10:00:12",
    "beijing",
)
add(
    F + "DSC0003.JPG",
    "china",
    [flip, crop(0.1, 0.1, 0.9, 0.9)],
    "same pagoda, mirrored and cropped (near-duplicate)",
    "huawei",
    "2023-01-22 10:00:30",
    "beijing",
)
add(F + "DSC0004.JPG", "chelsea", [], "a tabby cat", "huawei", "2023-01-23 15:20:00", "beijing")
add(
    F + "DSC0005.JPG",
    "menu_nye",
    [photo(5, -1.5)],
    "red New Year's Eve dinner menu '年夜饭菜单 2023 兔年' (红烧鱼, 饺子, 八宝饭, 年糕)",
    "huawei",
    "2023-01-21 18:30:00",
    "beijing",
)

M = "家庭/猫咪/"
add(M + "咪咪睡觉.jpg", "chelsea", [cool], "the tabby cat (cooler tones)", "pixel", "2023-03-11 21:05:00", "shanghai")
add(
    M + "IMG_20230312_101500.jpg",
    "chelsea",
    [flip],
    "the tabby cat, mirrored",
    "pixel",
    "2023-03-12 10:15:00",
    "shanghai",
)
add(
    M + "IMG_20230315_183000.jpg",
    "chelsea",
    [crop(0.3, 0.05, 0.8, 0.75)],
    "close-up of the cat's face",
    "pixel",
    "2023-03-15 18:30:00",
    "shanghai",
)
add(
    M + "IMG_20230801_090000.jpg", "chelsea", [gray], "the cat in black and white", "pixel", "2023-08-01 09:00:00", None
)

MA = "家庭/2024中秋/"
add(
    MA + "IMG_20240917_193000.jpg",
    "mooncake",
    [photo(917, 2.0)],
    "mooncake box: 中秋快乐, 莲蓉蛋黄月饼, 花好月圆",
    "huawei",
    "2024-09-17 19:30:00",
    "shanghai",
)
add(
    MA + "IMG_20240917_200000.jpg",
    "moon",
    [bright],
    "the (full) moon, lunar surface",
    "huawei",
    "2024-09-17 20:00:00",
    "shanghai",
)
add(
    MA + "IMG_20240917_201500.jpg",
    "moon",
    [crop(0.15, 0.15, 0.85, 0.85)],
    "the moon, cropped closer (near-duplicate)",
    "huawei",
    "2024-09-17 20:15:00",
    "shanghai",
)

S = "Space Center 2022/"
add(
    S + "IMG_5501.JPG",
    "rocket",
    [],
    "rocket on the launch pad at dusk with lightning towers",
    "canon",
    "2022-11-15 05:40:10",
    "ksc",
)
add(
    S + "IMG_5502.JPG",
    "rocket",
    [crop(0.3, 0.1, 0.95, 1.0)],
    "rocket on the launch pad, cropped (near-duplicate)",
    "canon",
    "2022-11-15 05:41:02",
    "ksc",
)
add(
    S + "IMG_5510.JPG",
    "astronaut",
    [],
    "portrait of a woman astronaut in an orange space suit with US flag (one person, face visible)",
    "canon",
    "2022-11-15 14:00:00",
    "ksc",
)
add(
    S + "IMG_5511.JPG",
    "astronaut",
    [crop(0.25, 0.0, 0.8, 0.6)],
    "close-up of the astronaut's face (near-duplicate)",
    "canon",
    "2022-11-15 14:00:20",
    "ksc",
)
add(
    S + "IMG_5520.JPG",
    "hubble",
    [resize(0.6)],
    "deep-space image full of galaxies (Hubble deep field)",
    "canon",
    "2022-11-16 11:10:00",
    "ksc",
)
add(S + "IMG_5521.JPG", "moon", [resize(0.8)], "the moon surface", "canon", "2022-11-16 11:25:00", "ksc")
add(
    S + "rocket launch.jpg",
    "rocket",
    [warm, resize(0.75)],
    "rocket on the launch pad, warmer colours (near-duplicate)",
    "canon",
    "2022-11-15 05:42:30",
    "ksc",
)

SC = "Screenshots/"
add(
    SC + "menu.png",
    "menu_trattoria",
    [],
    "screenshot of restaurant menu 'LUIGI'S TRATTORIA' (pizza, carbonara, lasagna, tiramisu, espresso)",
    None,
    None,
    None,
)
add(
    SC + "Screenshot 2025-01-14 at 10.22.31.png",
    "online_order",
    [],
    "online order confirmation #48213 (noise-cancelling headphones $199, USB-C cable), total $211.99",
    None,
    None,
    None,
)
add(
    SC + "Screenshot_20240305-201500.png",
    "chat_note",
    [],
    "Chinese phone memo: 下班记得买 牛奶 鸡蛋 猫粮, 给妈妈打电话",
    None,
    None,
    None,
)

W = "work/"
add(
    W + "whiteboard 2025-03-02.jpg",
    "whiteboard_en",
    [photo(302, 1.0)],
    "whiteboard 'Q2 PLANNING: launch photo search beta, fix login bug on Android, hire a product designer, budget review; DEADLINE: April 15'",
    "iphone14",
    "2025-03-02 15:30:00",
    None,
)
add(
    W + "whiteboard 2025-03-02 (2).jpg",
    "whiteboard_en",
    [photo(3022, -3.0), crop(0.0, 0.1, 1.0, 0.9)],
    "same whiteboard, another shot (near-duplicate)",
    "iphone14",
    "2025-03-02 15:30:12",
    None,
)
add(
    W + "白板_周会_2025-04-07.jpg",
    "whiteboard_zh",
    [photo(407, 2.0)],
    "Chinese whiteboard '周会议程': 新版本发布时间, 第三季度预算, 招聘两名工程师, 客户反馈; 下次开会周五下午三点",
    "iphone14",
    "2025-04-07 10:05:00",
    None,
)
add(
    W + "scans/scan0001.jpg",
    "page",
    [],
    "scanned book page 'Region-based segmentation' (printed text)",
    None,
    None,
    None,
)
add(W + "scans/scan0002.jpg", "text", [], "handwritten math equations on paper", None, None, None)
add(
    W + "receipts/receipt_taxi_2024-05-18.jpg",
    "receipt_taxi",
    [photo(518, -2.0)],
    "taxi receipt 'YELLOW CAB NYC' JFK Airport -> Times Square, total $23.40",
    "iphone14",
    "2024-05-18 18:45:00",
    "nyc",
)
add(
    W + "receipts/发票_餐饮_2024-06.jpg",
    "receipt_zh",
    [photo(608, 1.5)],
    "Chinese restaurant receipt 老北京炸酱面馆 餐饮发票 (烤鸭, 炸酱面, 饺子) 合计 ¥233, 微信支付",
    "huawei",
    "2024-06-08 19:25:00",
    "beijing",
)
add(
    W + "receipts/IMG_3301.JPG",
    "receipt_grocery",
    [photo(3301, 3.0)],
    "grocery receipt 'FRESHMART SUPERMARKET' milk, bread, bananas, eggs, coffee beans, total $22.84",
    "iphone14",
    "2024-09-02 17:10:00",
    None,
)

T = "旅行/2018北京/"
add(
    T + "DSC_4410.JPG",
    "china",
    [resize(0.9)],
    "traditional Chinese pagoda tower on a hill above a lake",
    "nikon",
    "2018-10-03 09:45:00",
    "beijing",
)
add(
    T + "DSC_4411.JPG",
    "china",
    [cool, crop(0.0, 0.0, 0.85, 1.0)],
    "same pagoda, cooler colours (near-duplicate)",
    "nikon",
    "2018-10-03 09:45:30",
    "beijing",
)
add(
    T + "DSC_4425.JPG",
    "sign_wangfujing",
    [photo(4425, -2.0)],
    "blue street sign '王府井大街 Wangfujing Dajie' (东单, 天安门)",
    "nikon",
    "2018-10-04 11:20:00",
    "beijing",
)
add(
    T + "DSC_4430.JPG",
    "menu_beijing",
    [photo(4430, 3.0)],
    "menu '老北京炸酱面馆 菜单' (炸酱面, 北京烤鸭, 饺子, 卤煮火烧, 冰糖葫芦, 豆浆)",
    "nikon",
    "2018-10-04 12:30:00",
    "beijing",
)
add(
    T + "DSC_4431.JPG",
    "coins",
    [],
    "ancient coins on black background (museum)",
    "nikon",
    "2018-10-05 14:00:00",
    "beijing",
)

D = "DCIM/100NIKON/"
add(
    D + "DSC_0001.JPG",
    "camera",
    [],
    "black-and-white: a man with a camera on a tripod (one person)",
    "nikon",
    "2021-05-02 16:00:00",
    None,
)
add(
    D + "DSC_0002.JPG",
    "camera",
    [flip],
    "man with camera on tripod, mirrored (near-duplicate)",
    "nikon",
    "2021-05-02 16:00:05",
    None,
)
add(D + "DSC_0015.JPG", "horse", [], "black silhouette of a horse on white", "nikon", "2021-05-09 10:30:00", None)
add(
    D + "DSC_0016.JPG",
    "horse",
    [invert, flip],
    "white horse silhouette on black, facing the other way",
    "nikon",
    "2021-05-09 10:31:00",
    None,
)
add(
    D + "DSC_0020.JPG", "motorcycle_left", [], "red motorcycle parked in a garage", "nikon", "2021-06-20 17:00:00", None
)
add(
    D + "DSC_0021.JPG",
    "motorcycle_right",
    [],
    "red motorcycle in a garage, slightly different viewpoint",
    "nikon",
    "2021-06-20 17:00:02",
    None,
)
add(D + "DSC_0030.JPG", "clock", [], "blurry grayscale wall clock", "nikon", "2021-07-04 12:00:00", None)
add(D + "DSC_0040.JPG", "brick", [], "brick wall texture (grayscale)", "nikon", "2021-08-15 09:00:00", None)

R = "Camera Roll/"
add(R + "IMG_1001.JPG", "coffee", [warm], "cup of coffee (warm tone)", "iphone12", "2023-03-05 08:30:00", "shanghai")
add(
    R + "IMG_1002.JPG",
    "coffee",
    [flip, resize(0.8)],
    "cup of coffee, mirrored (near-duplicate)",
    "iphone12",
    "2023-03-05 08:31:00",
    "shanghai",
)
add(
    R + "IMG_1010.JPG",
    "flower",
    [crop(0.2, 0.1, 0.8, 0.9)],
    "flower close-up crop",
    "iphone12",
    "2023-03-20 12:00:00",
    "shanghai",
)
add(
    R + "IMG_1020.JPG",
    "astronaut",
    [crop(0.2, 0.0, 0.85, 0.7), flip],
    "selfie-style close-up of a woman's face (mirrored crop of the astronaut portrait)",
    "iphone12",
    "2023-04-02 13:00:00",
    "shanghai",
)
add(
    R + "IMG_1030.JPG",
    "motorcycle_left",
    [crop(0.1, 0.2, 0.9, 0.95)],
    "red motorcycle, cropped",
    "iphone12",
    "2023-05-01 11:00:00",
    None,
)
add(R + "IMG_1040.JPG", "grass", [], "grass texture (grayscale)", "iphone12", "2023-06-10 16:00:00", "shanghai")
add(R + "IMG_1041.JPG", "gravel", [], "gravel texture (grayscale)", "iphone12", "2023-06-10 16:01:00", "shanghai")
add(
    R + "IMG_1050.JPG",
    "parking",
    [photo(1050, 1.0)],
    "yellow parking sign 'P2 LEVEL 2 ROW C / B2 停车场 C区'",
    "iphone12",
    "2023-07-08 19:00:00",
    "shanghai",
)
add(
    R + "IMG_1060.JPG",
    "camera",
    [crop(0.2, 0.0, 0.8, 0.7)],
    "man with camera, cropped closer (near-duplicate)",
    "iphone12",
    "2023-08-12 10:00:00",
    None,
)

DL = "Downloads/"
add(DL + "hubble_deep_field.jpg", "hubble", [], "Hubble deep field: many galaxies in space", None, None, None)
add(
    DL + "wallpaper-4k.jpg",
    "hubble",
    [flip, crop(0.1, 0.1, 0.9, 0.9)],
    "galaxies wallpaper (near-duplicate of hubble deep field)",
    None,
    None,
    None,
)
add(DL + "logo.png", "logo", [], "scikit-image logo", None, None, None)
add(DL + "colorwheel.png", "colorwheel", [], "colour wheel", None, None, None)
add(DL + "1f3a9c2e.jpg", "moon", [resize(0.5)], "the moon (small)", None, None, None)

L = "研究/显微镜/"
add(L + "sample_01.png", "ihc", [], "immunohistochemistry microscopy stain (brown/blue tissue)", None, None, None)
add(L + "sample_01_crop.png", "ihc", [crop(0.2, 0.2, 0.8, 0.8)], "crop of the same microscopy image", None, None, None)
add(L + "sample_02.png", "cell", [], "grayscale microscopy image of a cell", None, None, None)
add(L + "retina_left_eye.jpg", "retina", [resize(0.5)], "retina fundus photograph (eye)", None, None, None)

C = "Collages/"
add(
    C + "合影.jpg",
    "collage",
    [side_by_side("astronaut", "camera")],
    "collage: astronaut woman and cameraman side by side (two people)",
    None,
    None,
    None,
)
add(
    C + "pets_and_coffee.jpg",
    "collage",
    [side_by_side("chelsea", "coffee")],
    "collage: the tabby cat next to a cup of coffee",
    None,
    None,
    None,
)

DT = "Desktop/"
add(DT + "cat.png", "chelsea", [resize(0.7)], "the tabby cat (small)", None, None, None)
add(
    DT + "IMG_0001 copy.jpg",
    "rocket",
    [gray],
    "rocket on launch pad, black and white (near-duplicate)",
    None,
    None,
    None,
)


# ---------------------------------------------------------------- writing
def rat(x):
    return float(x)


def dms(v):
    v = abs(v)
    d = int(v)
    m = int((v - d) * 60)
    s = round(((v - d) * 60 - m) * 60, 2)
    return (float(d), float(m), float(s))


def make_exif(e):
    ex = Image.Exif()
    info = {}
    if e["cam"]:
        make, model = CAMERAS[e["cam"]]
        ex[0x010F] = make
        ex[0x0110] = model
        info["Make"], info["Model"] = make, model
    if e["dt"]:
        s = e["dt"].replace("-", ":", 2)
        ex[0x0132] = s  # DateTime
        sub = ex.get_ifd(0x8769)
        sub[0x9003] = s  # DateTimeOriginal
        sub[0x9004] = s  # DateTimeDigitized
        info["DateTimeOriginal"] = s
    if e["place"]:
        lat, lon, name = PLACES[e["place"]]
        g = ex.get_ifd(0x8825)
        g[0x0000] = b"\x02\x02\x00\x00"
        g[0x0001] = "N" if lat >= 0 else "S"
        g[0x0002] = dms(lat)
        g[0x0003] = "E" if lon >= 0 else "W"
        g[0x0004] = dms(lon)
        info["GPS"] = {"lat": lat, "lon": lon, "place": name}
    return (ex if info else None), info


def build(out, manifest_path):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    rows = []
    for e in E:
        if e["src"] in REAL:
            im = REAL[e["src"]]()
        elif e["src"] in RENDER:
            im = RENDER[e["src"]]()
        else:
            im = None
        for t in e["tf"]:
            im = t(im)
        im = im.convert("RGB")
        dst = os.path.join(out, e["path"])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        ex, info = make_exif(e)
        if dst.lower().endswith(".png"):
            assert ex is None, e["path"]
            im.save(dst, format="PNG", optimize=False)
        else:
            kw = dict(format="JPEG", quality=90, subsampling=0)
            if ex is not None:
                kw["exif"] = ex
            im.save(dst, **kw)
        os.utime(dst, (IMPORT_MTIME, IMPORT_MTIME))
        rows.append(
            {
                "path": e["path"],
                "source": e["src"] + ("" if not e["tf"] else " (transformed)"),
                "shows": e["shows"],
                "size": list(im.size),
                "exif": info,
            }
        )
    if manifest_path:
        with open(manifest_path, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--manifest", default=os.path.join(HERE, "manifest.jsonl"), help="where to write manifest.jsonl ('' to skip)"
    )
    a = ap.parse_args()
    rows = build(a.out, a.manifest)
    print(f"wrote {len(rows)} photos to {a.out}")


if __name__ == "__main__":
    main()
