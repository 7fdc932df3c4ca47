"""A believable store to demonstrate with, and synthetic catalogs to measure with.

``seed_demo_catalog`` fills an empty catalog with a Chinese convenience store's goods: 14
categories and a few hundred products named in Chinese and English (generic goods, no
brands), priced in fen, with EAN-13 barcodes under the 69x (China) GS1 prefix. The barcodes,
the 税收分类编码 tax codes and stock are *illustrative*: shaped like real ones (valid check
digits, 19 digits, the 13 % / 9 % VAT split of China's rules), not registered to anyone.

``generate_products`` adds any number of synthetic products for benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, func, insert, select

from smartpos.money import Money
from smartpos.store.catalog import gtin_check_digit
from smartpos.store.catalog_tables import categories, products

__all__ = ["DEMO_CATEGORIES", "demo_products", "generate_products", "seed_demo_catalog"]

_VAT_GOODS_BP: Final = 1300  # 13 %: most goods
_VAT_FARM_BP: Final = 900  # 9 %: agricultural produce, grain, edible oil
_DEMO_PREFIX: Final = "692"  # EAN-13 "690".."699" are GS1 China's
_SYNTHETIC_PREFIX: Final = "693"
_SYNTHETIC_SKU_PREFIX: Final = "GEN-"
GENERATE_MAX: Final = 10_000_000


# The demo store as data. "= code | 中文 | English | tax code | VAT %" starts a category;
# every other line is one kind of goods, "中文 | English | unit | variants", the variants
# "中文/English/price in yuan" separated by ";" (one product each). A kind may take several
# lines, which keeps lines short.
_DEMO_TABLE: Final = """
= drinks | 饮料 | Drinks | 1030307000000000000 | 13
矿泉水 | Mineral water | bottle | 550ml/550 ml/2.00; 1.5L/1.5 L/4.00; 5L/5 L/10.00
纯净水 | Purified water | bottle | 550ml/550 ml/1.50; 1.5L/1.5 L/3.50; 4.5L/4.5 L/8.00
苏打水 | Soda water | bottle | 原味 350ml/original 350 ml/3.50; 柠檬 350ml/lemon 350 ml/3.50
气泡水 | Sparkling water | bottle | 白桃 480ml/white peach 480 ml/5.00
气泡水 | Sparkling water | bottle | 青柠 480ml/lime 480 ml/5.00
可乐 | Cola | can | 330ml/330 ml/3.00; 500ml/500 ml/3.50; 2L/2 L/8.00
无糖可乐 | Zero sugar cola | can | 330ml/330 ml/3.00; 500ml/500 ml/3.50
柠檬汽水 | Lemon soda | can | 330ml/330 ml/3.00; 500ml/500 ml/3.50
橙味汽水 | Orange soda | can | 330ml/330 ml/3.00; 600ml/600 ml/4.00
冰红茶 | Iced black tea | bottle | 500ml/500 ml/3.00; 1L/1 L/5.00
绿茶 | Green tea | bottle | 500ml/500 ml/3.00; 1L/1 L/5.00
乌龙茶 无糖 | Oolong tea unsweetened | bottle | 500ml/500 ml/5.00
茉莉花茶 | Jasmine tea | bottle | 500ml/500 ml/4.00
奶茶 | Milk tea | bottle | 原味 500ml/original 500 ml/6.00; 麦香 500ml/malt 500 ml/6.00
橙汁 | Orange juice | bottle | 300ml/300 ml/4.50; 1L/1 L/12.00
苹果汁 | Apple juice | bottle | 300ml/300 ml/4.50; 1L/1 L/11.00
葡萄汁 | Grape juice | bottle | 300ml/300 ml/4.50
椰子汁 | Coconut drink | can | 245ml/245 ml/3.50; 1L/1 L/10.00
杏仁露 | Almond drink | can | 240ml/240 ml/4.00
功能饮料 | Energy drink | can | 250ml/250 ml/6.00; 500ml/500 ml/8.00
运动饮料 | Sports drink | bottle | 600ml/600 ml/5.00
即饮咖啡 拿铁 | Ready-to-drink latte | bottle | 280ml/280 ml/7.00
即饮咖啡 美式 | Ready-to-drink americano | bottle | 280ml/280 ml/6.50
酸梅汤 | Sour plum drink | bottle | 500ml/500 ml/4.50
凉茶 | Herbal tea | can | 310ml/310 ml/4.00
菊花茶 | Chrysanthemum tea | bottle | 500ml/500 ml/4.00
蜂蜜柚子茶 | Honey citron tea | bottle | 500ml/500 ml/5.50
电解质水 | Electrolyte water | bottle | 600ml/600 ml/5.50; 1L/1 L/8.00
= snacks | 零食 | Snacks | 1030199000000000000 | 13
薯片 | Potato chips | bag | 原味 70g/original 70 g/7.50; 番茄味 70g/tomato 70 g/7.50
薯片 | Potato chips | bag | 烧烤味 70g/barbecue 70 g/7.50; 黄瓜味 70g/cucumber 70 g/7.50
薯片 | Potato chips | bag | 原味 135g/original 135 g/12.90
虾条 | Prawn crackers | bag | 原味 40g/original 40 g/4.50; 香辣 40g/spicy 40 g/4.50
饼干 | Crackers | pack | 苏打 100g/soda 100 g/5.00; 葱油 100g/scallion 100 g/5.00
饼干 | Crackers | pack | 全麦 200g/whole wheat 200 g/9.90
夹心饼干 | Sandwich cookies | pack | 巧克力 97g/chocolate 97 g/6.50
夹心饼干 | Sandwich cookies | pack | 草莓 97g/strawberry 97 g/6.50; 香草 97g/vanilla 97 g/6.50
威化饼 | Wafers | pack | 牛奶 120g/milk 120 g/6.90; 巧克力 120g/chocolate 120 g/6.90
巧克力 | Milk chocolate | bar | 43g/43 g/7.00; 100g/100 g/15.00
黑巧克力 70% | Dark chocolate 70% | bar | 100g/100 g/18.00
口香糖 | Chewing gum | pack | 薄荷 12粒/mint 12 pcs/6.00; 西瓜 12粒/watermelon 12 pcs/6.00
水果糖 | Fruit candy | bag | 混合 150g/mixed 150 g/8.90
奶糖 | Milk candy | bag | 原味 200g/original 200 g/12.90
牛肉干 | Beef jerky | bag | 原味 50g/original 50 g/15.00; 麻辣 50g/spicy 50 g/15.00
猪肉脯 | Pork jerky | bag | 原味 100g/original 100 g/16.90
辣条 | Spicy gluten strips | bag | 106g/106 g/3.50
鸭脖 | Spicy duck neck | bag | 甜辣 150g/sweet and spicy 150 g/12.90
瓜子 | Sunflower seeds | bag | 五香 200g/spiced 200 g/7.90; 焦糖 200g/caramel 200 g/8.50
花生 | Peanuts | bag | 盐焗 150g/salted 150 g/6.90; 蒜香 150g/garlic 150 g/6.90
开心果 | Pistachios | bag | 120g/120 g/19.90
每日坚果 | Mixed nuts | box | 25g×7/25 g x7/29.90
海苔 | Seaweed snack | pack | 原味 4.5g×3/original 4.5 g x3/9.90
果冻 | Fruit jelly | cup | 什锦 6杯/assorted 6 cups/10.90
蛋卷 | Egg rolls | box | 原味 200g/original 200 g/12.90
爆米花 | Popcorn | bag | 奶油 100g/butter 100 g/7.90
蛋黄派 | Custard cakes | box | 6枚/6 pcs/9.90
薯条 | Potato sticks | cup | 番茄 90g/tomato 90 g/8.50
话梅 | Dried plums | bag | 100g/100 g/7.90
芒果干 | Dried mango | bag | 100g/100 g/12.90
= dairy | 乳制品 | Dairy | 1030201000000000000 | 13
纯牛奶 | Whole milk | box | 250ml/250 ml/3.50; 1L/1 L/12.50; 250ml×12/250 ml x12/45.00
低脂牛奶 | Low-fat milk | box | 250ml/250 ml/3.80; 1L/1 L/12.90
鲜牛奶 | Fresh milk | bottle | 950ml/950 ml/16.90; 450ml/450 ml/8.90
酸奶 | Yogurt | cup | 原味 100g/plain 100 g/4.50; 草莓 100g/strawberry 100 g/4.80
酸奶 | Yogurt | cup | 蓝莓 100g/blueberry 100 g/4.80; 黄桃 100g/yellow peach 100 g/4.80
常温酸奶 | Ambient yogurt | box | 205g/205 g/6.50
希腊酸奶 | Greek yogurt | cup | 原味 135g/plain 135 g/9.90
奶酪棒 | Cheese sticks | pack | 原味 100g/original 100 g/22.90
芝士片 | Cheese slices | pack | 10片 166g/10 slices 166 g/19.90
黄油 | Butter | pack | 淡味 200g/unsalted 200 g/28.90
乳酸菌饮料 | Probiotic milk drink | bottle | 100ml×5/100 ml x5/11.90
核桃奶 | Walnut milk | can | 240ml/240 ml/4.50
豆浆 | Soy milk | box | 原味 250ml/original 250 ml/3.00; 无糖 250ml/unsweetened 250 ml/3.00
燕麦奶 | Oat milk | box | 1L/1 L/16.90
= instant | 方便食品 | Instant food | 1030106000000000000 | 13
方便面 | Instant noodles | bag | 红烧牛肉 105g/braised beef 105 g/3.50
方便面 | Instant noodles | bag | 老坛酸菜 118g/pickled cabbage 118 g/3.50
方便面 | Instant noodles | bag | 香辣牛肉 105g/spicy beef 105 g/3.50; 海鲜 90g/seafood 90 g/3.50
方便面 | Instant noodles | pack | 红烧牛肉 5连包/braised beef 5 pack/15.90
桶面 | Cup noodles | cup | 红烧牛肉 110g/braised beef 110 g/5.50
桶面 | Cup noodles | cup | 番茄鸡蛋 110g/tomato and egg 110 g/5.50
自热米饭 | Self-heating rice | box | 宫保鸡丁 260g/kung pao chicken 260 g/15.90
自热米饭 | Self-heating rice | box | 咖喱牛肉 260g/curry beef 260 g/15.90
自热火锅 | Self-heating hotpot | box | 麻辣 400g/spicy 400 g/25.90
火腿肠 | Ham sausage | pack | 30g×9/30 g x9/8.90; 玉米 40g×8/corn 40 g x8/9.90
八宝粥 | Mixed congee | can | 360g/360 g/4.50
螺蛳粉 | River snail rice noodles | bag | 335g/335 g/13.90
酸辣粉 | Hot and sour noodles | cup | 130g/130 g/6.90
午餐肉罐头 | Luncheon meat | can | 340g/340 g/18.90
鱼罐头 | Canned fish | can | 豆豉鲮鱼 227g/dace in black bean 227 g/13.90
面包 | Bread | bag | 吐司 400g/toast 400 g/9.90; 手撕 300g/pull-apart 300 g/8.90
麦片 | Oatmeal | bag | 即食 500g/instant 500 g/15.90
芝麻糊 | Sesame paste | bag | 黑芝麻 400g/black sesame 400 g/14.90
粽子 | Zongzi | bag | 鲜肉 2只/pork 2 pcs/12.90; 豆沙 2只/red bean 2 pcs/9.90
= grain_oil | 粮油 | Rice and oil | 1010101000000000000 | 9
大米 | Rice | bag | 东北 5kg/northeast 5 kg/39.90; 香米 2.5kg/fragrant 2.5 kg/25.90
糯米 | Glutinous rice | bag | 1kg/1 kg/9.90
面粉 | Wheat flour | bag | 中筋 2.5kg/all-purpose 2.5 kg/17.90
挂面 | Dried noodles | pack | 1kg/1 kg/8.90
花生油 | Peanut oil | bottle | 1.8L/1.8 L/45.90; 5L/5 L/119.00
菜籽油 | Rapeseed oil | bottle | 5L/5 L/69.90
玉米油 | Corn oil | bottle | 1.8L/1.8 L/29.90
小米 | Millet | bag | 1kg/1 kg/12.90
绿豆 | Mung beans | bag | 500g/500 g/8.90
红豆 | Red beans | bag | 500g/500 g/9.90
= condiments | 调味品 | Condiments | 1030108000000000000 | 13
生抽 | Light soy sauce | bottle | 500ml/500 ml/8.90; 1.9L/1.9 L/22.90
老抽 | Dark soy sauce | bottle | 500ml/500 ml/9.90
陈醋 | Mature vinegar | bottle | 500ml/500 ml/7.90
米醋 | Rice vinegar | bottle | 500ml/500 ml/6.90
食盐 | Table salt | bag | 400g/400 g/3.00
白砂糖 | White sugar | bag | 500g/500 g/6.90
冰糖 | Rock sugar | bag | 400g/400 g/7.90
蚝油 | Oyster sauce | bottle | 510g/510 g/10.90
辣椒酱 | Chili sauce | bottle | 280g/280 g/9.90
风味豆豉辣酱 | Black bean chili sauce | bottle | 280g/280 g/12.90
豆瓣酱 | Chili bean paste | bag | 500g/500 g/8.90
番茄酱 | Ketchup | bottle | 320g/320 g/8.90
料酒 | Cooking wine | bottle | 500ml/500 ml/6.90
芝麻油 | Sesame oil | bottle | 220ml/220 ml/16.90
鸡精 | Chicken bouillon | bag | 200g/200 g/9.90
味精 | MSG | bag | 200g/200 g/6.90
花椒 | Sichuan pepper | bag | 50g/50 g/8.90
八角 | Star anise | bag | 50g/50 g/7.90
咖喱块 | Curry roux | box | 中辣 100g/medium hot 100 g/11.90
沙拉酱 | Salad dressing | bottle | 200g/200 g/9.90
火锅底料 | Hotpot base | bag | 麻辣 200g/spicy 200 g/12.90; 番茄 200g/tomato 200 g/12.90
= fruit | 水果 | Fruit | 1010112000000000000 | 9
苹果 富士 | Fuji apples | bag | 约1kg/approx. 1 kg/12.90; 约2.5kg/approx. 2.5 kg/29.90
香蕉 | Bananas | bag | 约1kg/approx. 1 kg/7.90
橙子 | Oranges | bag | 约1kg/approx. 1 kg/11.90
砂糖橘 | Mandarins | bag | 约1kg/approx. 1 kg/9.90
梨 | Pears | bag | 约1kg/approx. 1 kg/9.90
葡萄 | Grapes | box | 约500g/approx. 500 g/15.90
草莓 | Strawberries | box | 约300g/approx. 300 g/29.90
西瓜 | Watermelon | pcs | 半个/half/15.90; 切块 约400g/cut approx. 400 g/8.90
哈密瓜 | Hami melon | pcs | 切块 约400g/cut approx. 400 g/9.90
猕猴桃 | Kiwifruit | box | 6个/6 pcs/19.90
芒果 | Mangoes | box | 约1kg/approx. 1 kg/19.90
火龙果 | Dragon fruit | pcs | 红心 约500g/red approx. 500 g/12.90
蓝莓 | Blueberries | box | 125g/125 g/15.90
柠檬 | Lemons | bag | 4个/4 pcs/7.90
桃子 | Peaches | box | 约1kg/approx. 1 kg/16.90
樱桃番茄 | Cherry tomatoes | box | 约500g/approx. 500 g/9.90
= vegetables | 蔬菜 | Vegetables | 1010111000000000000 | 9
西红柿 | Tomatoes | bag | 约500g/approx. 500 g/5.90
黄瓜 | Cucumbers | bag | 约500g/approx. 500 g/4.50
土豆 | Potatoes | bag | 约1kg/approx. 1 kg/5.90
胡萝卜 | Carrots | bag | 约500g/approx. 500 g/3.90
大白菜 | Napa cabbage | pcs | 约1.5kg/approx. 1.5 kg/6.90
上海青 | Bok choy | bag | 约400g/approx. 400 g/4.90
菠菜 | Spinach | bag | 约300g/approx. 300 g/5.50
生菜 | Lettuce | bag | 约300g/approx. 300 g/4.90
西兰花 | Broccoli | pcs | 约400g/approx. 400 g/6.90
茄子 | Aubergine | bag | 约500g/approx. 500 g/5.90
洋葱 | Onions | bag | 约1kg/approx. 1 kg/4.90
大蒜 | Garlic | bag | 约250g/approx. 250 g/5.90
生姜 | Ginger | bag | 约200g/approx. 200 g/4.90
小葱 | Spring onions | bag | 约100g/approx. 100 g/2.50
青椒 | Green peppers | bag | 约500g/approx. 500 g/5.90
鸡蛋 | Eggs | box | 10枚/10 pcs/12.90; 30枚/30 pcs/32.90
香菇 | Shiitake mushrooms | box | 约200g/approx. 200 g/6.90
金针菇 | Enoki mushrooms | bag | 200g/200 g/3.50
豆腐 | Tofu | box | 北豆腐 400g/firm 400 g/3.50; 内酯豆腐 350g/silken 350 g/3.00
豆腐干 | Dried tofu | pack | 五香 200g/spiced 200 g/5.90
腐竹 | Tofu skin sticks | bag | 250g/250 g/9.90
豆芽 | Bean sprouts | bag | 绿豆芽 300g/mung bean 300 g/2.50
= frozen | 冷冻食品 | Frozen | 1030110000000000000 | 13
冰淇淋 | Ice cream | pcs | 香草 75g/vanilla 75 g/5.00; 巧克力 75g/chocolate 75 g/5.00
冰淇淋 | Ice cream | pcs | 抹茶 75g/matcha 75 g/6.00
冰淇淋 | Ice cream | box | 香草 家庭装 1kg/vanilla family tub 1 kg/29.90
雪糕 | Ice lolly | pcs | 绿豆 65g/mung bean 65 g/3.00; 牛奶 65g/milk 65 g/3.50
速冻汤圆 | Frozen tangyuan | bag | 黑芝麻 500g/black sesame 500 g/12.90
速冻汤圆 | Frozen tangyuan | bag | 花生 500g/peanut 500 g/12.90
速冻水饺 | Frozen dumplings | bag | 韭菜猪肉 1kg/pork and chive 1 kg/29.90
速冻水饺 | Frozen dumplings | bag | 三鲜 1kg/three delicacies 1 kg/32.90
速冻包子 | Frozen steamed buns | bag | 猪肉 480g/pork 480 g/16.90
手抓饼 | Frozen flatbread | bag | 原味 10片/original 10 pcs/15.90
鸡翅 | Chicken wings | bag | 冷冻 500g/frozen 500 g/24.90
冰块 | Ice cubes | bag | 2kg/2 kg/5.00
鱼丸 | Fish balls | bag | 250g/250 g/9.90
= alcohol | 酒类 | Alcohol | 1030401000000000000 | 13
啤酒 | Lager beer | can | 500ml/500 ml/5.00; 330ml×6/330 ml x6/22.90
精酿啤酒 | Craft beer | can | IPA 330ml/IPA 330 ml/15.90; 小麦 330ml/wheat 330 ml/13.90
黑啤 | Stout | can | 500ml/500 ml/8.90
白酒 | Baijiu | bottle | 42度 500ml/42% 500 ml/59.00; 52度 100ml/52% 100 ml/15.00
黄酒 | Yellow rice wine | bottle | 五年 500ml/5 year 500 ml/25.90
红葡萄酒 | Red wine | bottle | 750ml/750 ml/69.00
果酒 | Fruit wine | bottle | 青梅 330ml/green plum 330 ml/29.90
预调鸡尾酒 | Premixed cocktail | can | 桃子 330ml/peach 330 ml/12.00
预调鸡尾酒 | Premixed cocktail | can | 白葡萄 330ml/white grape 330 ml/12.00
= household | 日用品 | Household | 1070299000000000000 | 13
抽纸 | Facial tissues | pack | 3层 100抽×6/3-ply 100 sheets x6/15.90
卷纸 | Toilet paper | pack | 4层 10卷/4-ply 10 rolls/29.90
厨房纸 | Kitchen towels | pack | 2卷/2 rolls/9.90
湿巾 | Wet wipes | pack | 80片/80 pcs/9.90
垃圾袋 | Garbage bags | pack | 中号 50只/medium 50 pcs/8.90; 大号 30只/large 30 pcs/9.90
洗洁精 | Dish soap | bottle | 1.5kg/1.5 kg/14.90
洗衣液 | Laundry liquid | bottle | 2kg/2 kg/34.90; 3kg/3 kg/49.90
洗衣粉 | Washing powder | bag | 1.5kg/1.5 kg/19.90
保鲜膜 | Cling film | pcs | 30cm×20m/30 cm x 20 m/12.90
保鲜袋 | Food bags | box | 中号 100只/medium 100 pcs/9.90
一次性筷子 | Disposable chopsticks | pack | 50双/50 pairs/7.90
纸杯 | Paper cups | pack | 50只/50 pcs/6.90
电池 | Batteries | pack | 5号 4节/AA x4/12.90; 7号 4节/AAA x4/12.90
打火机 | Lighter | pcs | 一次性/disposable/2.00
雨伞 | Umbrella | pcs | 折叠/folding/29.90
蚊香 | Mosquito coils | box | 10盘/10 coils/8.90
口罩 | Face masks | pack | 一次性 10只/disposable 10 pcs/9.90
数据线 | Charging cable | pcs | USB-C 1m/USB-C 1 m/19.90
= personal_care | 个人护理 | Personal care | 1070223000000000000 | 13
牙膏 | Toothpaste | pcs | 薄荷 120g/mint 120 g/12.90; 美白 120g/whitening 120 g/15.90
牙刷 | Toothbrush | pcs | 软毛/soft/7.90; 软毛 2支/soft x2/12.90
漱口水 | Mouthwash | bottle | 500ml/500 ml/19.90
洗发水 | Shampoo | bottle | 去屑 400ml/anti-dandruff 400 ml/39.90
洗发水 | Shampoo | bottle | 柔顺 400ml/smooth 400 ml/36.90
护发素 | Conditioner | bottle | 400ml/400 ml/36.90
沐浴露 | Body wash | bottle | 750ml/750 ml/32.90
香皂 | Bar soap | pcs | 115g/115 g/5.90
洗手液 | Hand soap | bottle | 500ml/500 ml/16.90
洗面奶 | Facial cleanser | pcs | 100g/100 g/29.90
剃须刀 | Razor | pcs | 3刀头/3-blade/19.90
卫生巾 | Sanitary pads | pack | 日用 10片/day 10 pcs/12.90; 夜用 8片/night 8 pcs/14.90
创可贴 | Adhesive bandages | box | 20片/20 pcs/6.90
护手霜 | Hand cream | pcs | 50g/50 g/15.90
棉签 | Cotton buds | box | 200支/200 pcs/5.90
= stationery | 文具 | Stationery | 1060601000000000000 | 13
中性笔 | Gel pen | pcs | 黑色 0.5mm/black 0.5 mm/3.00; 蓝色 0.5mm/blue 0.5 mm/3.00
中性笔 | Gel pen | pcs | 红色 0.5mm/red 0.5 mm/3.00
圆珠笔 | Ballpoint pen | pcs | 蓝色/blue/1.50
铅笔 | Pencils | pack | HB 10支/HB x10/8.90
橡皮 | Eraser | pcs | 白色/white/1.50
笔记本 | Notebook | pcs | A5 80页/A5 80 pages/5.90; B5 60页/B5 60 pages/4.90
便利贴 | Sticky notes | pack | 76×76mm/76 x 76 mm/4.90
胶带 | Adhesive tape | pcs | 透明 18mm/clear 18 mm/2.90
胶水 | Glue stick | pcs | 21g/21 g/3.50
剪刀 | Scissors | pcs | 办公/office/8.90
信封 | Envelopes | pack | 10个/10 pcs/3.90
A4打印纸 | A4 copy paper | pack | 70g 500张/70 gsm 500 sheets/24.90
= ready_meals | 鲜食 | Fresh meals | 1030105000000000000 | 13
饭团 | Rice ball | pcs | 金枪鱼/tuna/6.90; 鸡肉/chicken/6.90; 三文鱼/salmon/8.90
寿司 | Sushi | box | 什锦 8贯/assorted 8 pcs/19.90
凉面 | Cold noodles | box | 芝麻酱/sesame sauce/12.90
三明治 | Sandwich | pcs | 火腿芝士/ham and cheese/9.90; 鸡蛋/egg/8.90
便当 | Bento | box | 红烧肉/braised pork/19.90; 照烧鸡腿/teriyaki chicken/18.90
关东煮 | Oden | cup | 5串/5 skewers/12.00
茶叶蛋 | Tea egg | pcs | 1个/1 pc/2.00
包子 | Steamed bun | pcs | 猪肉/pork/2.50; 豆沙/red bean/2.00
烤肠 | Grilled sausage | pcs | 原味/original/4.00
现磨咖啡 | Fresh coffee | cup | 美式 中杯/americano medium/10.00; 拿铁 中杯/latte medium/13.00
"""


@dataclass(frozen=True, slots=True)
class DemoCategory:
    code: str
    name_zh: str
    name_en: str
    tax_code: str  # illustrative 税收分类编码 for the category's goods
    tax_rate_bp: int
    # (name zh, name en, unit, price in fen) of each product, in the table's order
    goods: tuple[tuple[str, str, str, int], ...]
    # (base zh, base en, price in fen of its first variant) of each kind of goods
    kinds: tuple[tuple[str, str, int], ...]


def _parse_demo_table(text: str) -> tuple[DemoCategory, ...]:
    sections: list[tuple[list[str], list[str]]] = []
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        if line.startswith("="):
            sections.append(([f.strip() for f in line[1:].split("|")], []))
        else:
            sections[-1][1].append(line)
    found = []
    for (code, name_zh, name_en, tax_code, vat_pct), lines in sections:
        goods: list[tuple[str, str, str, int]] = []
        kinds: dict[tuple[str, str], int] = {}
        for line in lines:
            base_zh, base_en, unit, variants = (f.strip() for f in line.split("|"))
            for variant in variants.split(";"):
                var_zh, var_en, price = (f.strip() for f in variant.split("/"))
                price_minor = Money.parse(price).amount_minor
                kinds.setdefault((base_zh, base_en), price_minor)
                goods.append((f"{base_zh} {var_zh}", f"{base_en} {var_en}", unit, price_minor))
        found.append(
            DemoCategory(
                code,
                name_zh,
                name_en,
                tax_code,
                int(vat_pct) * 100,
                tuple(goods),
                tuple((zh, en, p) for (zh, en), p in kinds.items()),
            )
        )
    return tuple(found)


DEMO_CATEGORIES: Final = _parse_demo_table(_DEMO_TABLE)


def demo_products() -> Iterator[dict[str, Any]]:
    """The demo store's products, always in the same order and with the same values; each
    row names its category by ``category`` (code) instead of an id."""
    for cat_no, cat in enumerate(DEMO_CATEGORIES, start=1):
        for item_no, (name_zh, name_en, unit, price_minor) in enumerate(cat.goods, start=1):
            body = f"{_DEMO_PREFIX}{cat_no:02d}{item_no:07d}"
            yield {
                "category": cat.code,
                "sku": f"{cat.code.upper().replace('_', '')[:4]}-{item_no:04d}",
                "barcode": body + str(gtin_check_digit(body)),
                "name_zh": name_zh,
                "name_en": name_en,
                "price_minor": price_minor,
                "unit": unit,
                "tax_code": cat.tax_code,
                "tax_rate_bp": cat.tax_rate_bp,
                # Cheaper goods are stocked deeper; varied, but the same every run.
                "stock_qty": 6 + (item_no * 7 + cat_no * 3) % 40 + (60 if price_minor < 600 else 0),
                "active": True,
            }


def _ensure_categories(engine: Engine) -> dict[str, int]:
    """The demo categories, added where missing; their ids by code."""
    with engine.begin() as conn:
        have = dict(conn.execute(select(categories.c.code, categories.c.id)).all())
        missing = [
            {"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "sort": i * 10}
            for i, c in enumerate(DEMO_CATEGORIES, start=1)
            if c.code not in have
        ]
        if missing:
            conn.execute(insert(categories), missing)
            have = dict(conn.execute(select(categories.c.code, categories.c.id)).all())
    return have


def seed_demo_catalog(engine: Engine) -> int:
    """Add the demo store's categories and products that are not there yet (by category
    code and SKU); returns how many products were added. A second call adds nothing."""
    ids = _ensure_categories(engine)
    with engine.begin() as conn:
        have = set(conn.execute(select(products.c.sku)).scalars())
        rows = []
        for p in demo_products():
            if p["sku"] in have:
                continue
            row = dict(p)
            row["category_id"] = ids[row.pop("category")]
            rows.append(row)
        if rows:
            conn.execute(insert(products), rows)
    return len(rows)


# --- synthetic catalogs -----------------------------------------------------------------------

_QUALIFIERS: Final = (
    ("", ""), ("优选", "Select"), ("经典", "Classic"), ("家庭装", "Family pack"),
    ("有机", "Organic"), ("进口", "Imported"), ("低糖", "Low sugar"), ("迷你", "Mini"),
    ("特惠", "Value"), ("精品", "Premium"), ("新鲜", "Fresh"), ("地道", "Traditional"),
)  # fmt: skip
_FLAVOURS: Final = (
    ("原味", "original"), ("香辣", "spicy"), ("番茄", "tomato"), ("海盐", "sea salt"),
    ("草莓", "strawberry"), ("巧克力", "chocolate"), ("柠檬", "lemon"), ("蜂蜜", "honey"),
    ("抹茶", "matcha"), ("芒果", "mango"), ("椰子", "coconut"), ("麻辣", "mala"),
)  # fmt: skip
_SIZES: Final = (
    ("50g", "50 g", 60), ("100g", "100 g", 100), ("250g", "250 g", 200),
    ("500g", "500 g", 350), ("250ml", "250 ml", 80), ("500ml", "500 ml", 130),
    ("1L", "1 L", 220), ("2L", "2 L", 380), ("6入", "6 pack", 450), ("12入", "12 pack", 800),
)  # fmt: skip


def _synthetic_bases() -> list[tuple[str, str, int, int]]:
    """(zh, en, price in fen, category number) of every kind of the demo's goods: the
    synthetic products are variations of them."""
    return [
        (zh, en, price_minor, cat_no)
        for cat_no, cat in enumerate(DEMO_CATEGORIES, start=1)
        for zh, en, price_minor in cat.kinds
    ]


def generate_products(
    engine: Engine,
    n: int,
    *,
    batch: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Add ``n`` synthetic products (SKUs ``GEN-…``, EAN-13s under 693, names combined from
    qualifiers, the demo's goods, flavours and sizes), after any generated before; one
    transaction per ``batch`` rows, ``progress(done, n)`` after each. Returns ``n``.
    The same ``n`` on the same catalog gives the same products."""
    if not 0 <= n <= GENERATE_MAX:
        raise ValueError(f"n must be 0..{GENERATE_MAX:,}")
    if not 1 <= batch <= 100_000:
        raise ValueError("batch must be 1..100,000")
    ids = _ensure_categories(engine)
    cat_ids = [ids[c.code] for c in DEMO_CATEGORIES]
    bases = _synthetic_bases()
    with engine.connect() as conn:
        start = int(
            conn.execute(
                select(func.count())
                .select_from(products)
                .where(products.c.sku.like(_SYNTHETIC_SKU_PREFIX + "%"))
            ).scalar_one()
        )
    done = 0
    while done < n:
        size = min(batch, n - done)
        rows = [_synthetic(start + done + k, bases, cat_ids) for k in range(size)]
        with engine.begin() as conn:
            conn.execute(insert(products), rows)
        done += size
        if progress is not None:
            progress(done, n)
    return n


def _synthetic(
    i: int, bases: list[tuple[str, str, int, int]], cat_ids: list[int]
) -> dict[str, Any]:
    # Mixed radix over (base, flavour, size, qualifier): neighbours differ in the base first,
    # so every category and every first character shows up early in a small catalog too.
    base_zh, base_en, base_fen, cat_no = bases[i % len(bases)]
    rest = i // len(bases)
    flavour_zh, flavour_en = _FLAVOURS[rest % len(_FLAVOURS)]
    rest //= len(_FLAVOURS)
    size_zh, size_en, size_pct = _SIZES[rest % len(_SIZES)]
    rest //= len(_SIZES)
    qual_zh, qual_en = _QUALIFIERS[rest % len(_QUALIFIERS)]
    body = f"{_SYNTHETIC_PREFIX}{i:09d}"
    # Prices end in 0 or 90 fen, like shelf prices do.
    price_minor = max(90, base_fen * size_pct // 100 // 10 * 10 - (10 if i % 3 else 0))
    return {
        "sku": f"{_SYNTHETIC_SKU_PREFIX}{i:07d}",
        "barcode": body + str(gtin_check_digit(body)),
        "name_zh": f"{qual_zh}{base_zh} {flavour_zh} {size_zh}",
        "name_en": f"{qual_en} {base_en} {flavour_en} {size_en}".strip(),
        "category_id": cat_ids[cat_no - 1],
        "price_minor": price_minor,
        "unit": "pcs",
        "tax_code": DEMO_CATEGORIES[cat_no - 1].tax_code,
        "tax_rate_bp": DEMO_CATEGORIES[cat_no - 1].tax_rate_bp,
        "stock_qty": 5 + i * 37 % 200,
        "active": True,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m smartpos.store.seed --products 100000``: add generated products to the
    store of ``$SMARTPOS_HOME`` (the demo's, for the benchmarks), with progress."""
    import argparse
    import sys

    from smartpos.config import load_settings
    from smartpos.db.pos import open_pos_db

    parser = argparse.ArgumentParser(prog="python -m smartpos.store.seed", description=main.__doc__)
    parser.add_argument("--products", type=int, default=100_000)
    args = parser.parse_args(argv)
    settings = load_settings()
    engine = open_pos_db(settings)

    def show(done: int, total: int) -> None:
        print(f"\r{done:,} / {total:,} products", end="", file=sys.stderr, flush=True)

    try:
        seed_demo_catalog(engine)
        generate_products(engine, args.products, progress=show)
    except ValueError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"\n{args.products:,} products added to {settings.resolved_pos_db_url}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
