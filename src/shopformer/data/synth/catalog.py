"""The demo shop's product range: a category tree, brands tied to departments, and generated items.

Titles are composed from brand + adjective + product noun + variant so that text embeddings of
titles carry the same signal as the category and brand columns (a "Sonaro Noise Cancelling
Headphones" is close to other headphones), and premium adjectives go with higher prices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Leaf:
    """A leaf category: the products it sells, their variants and typical price."""

    path: str
    nouns: tuple[str, ...]
    variants: tuple[str, ...]
    features: tuple[str, ...]
    median_price: float
    #: Consumables are bought again when they run out (coffee, shampoo, pet food).
    consumable: bool = False


@dataclass(frozen=True)
class Department:
    """A top-level department: one taste topic, with its own brands and adjectives."""

    name: str
    brands: tuple[str, ...]
    adjectives: tuple[str, ...]
    leaves: tuple[Leaf, ...]


#: Adjectives that signal a premium product; items carrying one are priced higher.
PREMIUM_ADJECTIVES = frozenset({"Premium", "Professional", "Pro", "Ultra", "Tailored", "Complete"})

DEPARTMENTS: tuple[Department, ...] = (
    Department("Home", ("Kitchara", "Oakhearth", "Velmont", "Brasco"),
               ("Classic", "Professional", "Everyday", "Premium", "Compact"), (
        Leaf("Home > Kitchen > Knives", ("Chef's Knife", "Paring Knife", "Santoku Knife", "Bread Knife", "Knife Set"),
             ("8 inch", "6 inch", "Damascus Steel", "Stainless Steel"),
             ("Forged from high-carbon steel", "Balanced handle for precise cuts"), 45.0),
        Leaf("Home > Kitchen > Cookware", ("Frying Pan", "Saucepan", "Dutch Oven", "Wok", "Stock Pot"),
             ("24 cm", "28 cm", "Cast Iron", "Nonstick"),
             ("Works on every hob including induction", "Oven safe up to 250 C"), 55.0),
        Leaf("Home > Kitchen > Coffee", ("Coffee Beans", "Ground Coffee", "Espresso Pods"),
             ("250 g", "500 g", "1 kg", "Dark Roast", "Medium Roast"),
             ("Roasted in small batches", "Notes of chocolate and caramel"), 14.0, consumable=True),
        Leaf("Home > Bedding > Sheets", ("Sheet Set", "Duvet Cover", "Pillowcase Pair"),
             ("Queen", "King", "Double", "Cotton", "Linen"),
             ("Breathable weave for cool nights", "Softens with every wash"), 60.0),
    )),
    Department("Beauty", ("Lumea", "Pureva", "Skinora", "Belle Rue"),
               ("Gentle", "Hydrating", "Radiant", "Soothing", "Premium"), (
        Leaf("Beauty > Skincare > Moisturisers", ("Face Cream", "Night Cream", "Moisturiser", "Hydrating Gel"),
             ("50 ml", "100 ml", "SPF 30", "Fragrance Free"),
             ("Suitable for sensitive skin", "Absorbs quickly without residue"), 22.0, consumable=True),
        Leaf("Beauty > Skincare > Cleansers", ("Facial Cleanser", "Micellar Water", "Cleansing Balm"),
             ("150 ml", "200 ml", "400 ml"),
             ("Removes make-up in one step", "Free from parabens"), 12.0, consumable=True),
        Leaf("Beauty > Hair > Shampoo", ("Shampoo", "Conditioner", "Hair Mask"),
             ("250 ml", "500 ml", "Travel Size"),
             ("For shine and volume", "Sulphate-free formula"), 10.0, consumable=True),
    )),
    Department("Electronics", ("Voltrix", "Sonaro", "Nexa", "Kyber"),
               ("Pro", "Ultra", "Smart", "Compact", "Essential"), (
        Leaf("Electronics > Audio > Headphones",
             ("Wireless Headphones", "Earbuds", "Noise Cancelling Headphones", "Gaming Headset"),
             ("Black", "White", "Midnight Blue", "Bluetooth 5.3"),
             ("Up to 30 hours of battery life", "Deep bass and clear highs"), 90.0),
        Leaf("Electronics > Audio > Speakers", ("Bluetooth Speaker", "Soundbar", "Smart Speaker"),
             ("Black", "Grey", "Waterproof", "20 W"),
             ("Room-filling sound", "Pairs with two devices at once"), 80.0),
        Leaf("Electronics > Computers > Accessories",
             ("Wireless Mouse", "Mechanical Keyboard", "USB-C Hub", "Laptop Stand"),
             ("Black", "Silver", "Compact", "Full Size"),
             ("Plug and play on every laptop", "Built for long working days"), 35.0),
        Leaf("Electronics > Phones > Chargers", ("Phone Case", "Fast Charger", "Charging Cable", "Power Bank"),
             ("USB-C", "10000 mAh", "1 m", "2 m", "Clear"),
             ("Charges to 50% in 30 minutes", "Drop-tested protection"), 18.0),
    )),
    Department("Sports", ("Stridex", "Peakline", "Aerofit", "Trailborn"),
               ("Lightweight", "Performance", "Pro", "Breathable", "Endurance"), (
        Leaf("Sports > Running > Shoes", ("Running Shoes", "Trail Shoes", "Racing Flats"),
             ("Size 39", "Size 42", "Size 44", "Women's", "Men's"),
             ("Cushioned midsole for long runs", "Grippy outsole for wet roads"), 95.0),
        Leaf("Sports > Fitness > Equipment", ("Yoga Mat", "Dumbbell Set", "Resistance Bands", "Kettlebell"),
             ("6 mm", "10 kg", "Set of 5", "Non-slip"),
             ("Built for home workouts", "Easy to store"), 35.0),
        Leaf("Sports > Nutrition > Protein", ("Whey Protein", "Protein Bars", "Electrolyte Tablets"),
             ("1 kg", "Chocolate", "Vanilla", "12 pack"),
             ("20 g of protein per serving", "Low in sugar"), 28.0, consumable=True),
    )),
    Department("Fashion", ("Mira & Co", "Northwell", "Urbanic", "Selden"),
               ("Classic", "Relaxed", "Tailored", "Vintage", "Everyday"), (
        Leaf("Fashion > Women > Dresses", ("Midi Dress", "Wrap Dress", "Summer Dress"),
             ("Size S", "Size M", "Floral", "Navy"),
             ("Flowing cut that moves with you", "Machine washable"), 45.0),
        Leaf("Fashion > Men > Shirts", ("Oxford Shirt", "Linen Shirt", "Polo Shirt"),
             ("Size M", "Size L", "White", "Slim Fit"),
             ("Crease-resistant fabric", "Mother-of-pearl buttons"), 35.0),
        Leaf("Fashion > Accessories > Bags", ("Tote Bag", "Backpack", "Crossbody Bag"),
             ("Leather", "Canvas", "Black", "Tan"),
             ("Fits a 14 inch laptop", "Adjustable strap"), 60.0),
    )),
    Department("Books", ("Larkspur Press", "Quillhouse", "Bramble Books"),
               ("Bestselling", "Award-winning", "Illustrated", "Complete"), (
        Leaf("Books > Fiction > Crime", ("Crime Novel", "Detective Thriller", "Mystery Novel"),
             ("Paperback", "Hardcover", "Box Set"),
             ("A page-turner from the first chapter", "Soon to be a TV series"), 12.0),
        Leaf("Books > Non-fiction > Cooking", ("Cookbook", "Baking Guide", "Recipe Collection"),
             ("Paperback", "Hardcover"),
             ("Over 100 tested recipes", "Step-by-step photographs"), 20.0),
    )),
    Department("Pets", ("Pawsome", "Whiskerly", "Barkfield"),
               ("Natural", "Grain-free", "Healthy", "Durable"), (
        Leaf("Pets > Dogs > Food", ("Dry Dog Food", "Dog Treats", "Puppy Food"),
             ("2 kg", "12 kg", "Chicken", "Salmon"),
             ("Made with real meat", "Supports healthy digestion"), 25.0, consumable=True),
        Leaf("Pets > Cats > Litter", ("Cat Litter", "Clumping Litter"),
             ("5 L", "10 L", "Unscented"),
             ("Locks in odours", "Low dust"), 12.0, consumable=True),
        Leaf("Pets > Dogs > Toys", ("Chew Toy", "Rope Toy", "Ball Launcher"),
             ("Small", "Large", "Durable"),
             ("Tough enough for strong chewers", "Floats in water"), 10.0),
    )),
)

LEAVES: tuple[Leaf, ...] = tuple(leaf for dept in DEPARTMENTS for leaf in dept.leaves)
N_DEPARTMENTS = len(DEPARTMENTS)


@dataclass(frozen=True)
class DemoCatalog:
    """Generated items: the catalog table the shop exports plus the hidden traits the simulation uses."""

    frame: pl.DataFrame
    department: np.ndarray  # int, index into DEPARTMENTS (the item's taste topic)
    leaf: np.ndarray  # int, index into LEAVES
    noun: list[str]  # product noun, used to write search queries
    price: np.ndarray  # float
    #: log(price / leaf median): how expensive the item is for what it is.
    relative_price: np.ndarray
    #: Unobserved quality; lifts both exposure and conversion.
    quality: np.ndarray
    #: Zipf-like exposure weights (sum to 1).
    popularity: np.ndarray
    consumable: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.price)


def _brand_tiers(rng: np.random.Generator) -> dict[str, float]:
    """Each brand gets a price tier (budget, mid, premium) shared by all its items."""
    brands = [brand for dept in DEPARTMENTS for brand in dept.brands]
    tiers = rng.choice(np.array([0.75, 1.0, 1.45]), size=len(brands), p=[0.3, 0.45, 0.25])
    return dict(zip(brands, tiers.tolist()))


def _round_price(price: np.ndarray) -> np.ndarray:
    """Shop-style prices: x.99 above 5, else two decimals."""
    shop_style = np.floor(price) + 0.99
    return np.where(price >= 5.0, shop_style, np.round(price, 2))


def build_catalog(rng: np.random.Generator, n_items: int, zipf_exponent: float) -> DemoCatalog:
    """Draw `n_items` items over the category tree with log-normal prices and Zipf popularity."""
    tiers = _brand_tiers(rng)
    leaf_dept = np.array([d for d, dept in enumerate(DEPARTMENTS) for _ in dept.leaves])
    # Every leaf gets at least one item, the rest follow uneven leaf sizes.
    leaf_weights = rng.dirichlet(np.full(len(LEAVES), 4.0))
    leaf = np.concatenate([
        np.arange(min(n_items, len(LEAVES))),
        rng.choice(len(LEAVES), size=max(0, n_items - len(LEAVES)), p=leaf_weights),
    ])
    leaf = np.sort(rng.permutation(leaf), kind="stable")
    rows, nouns, base_prices, consumable = [], [], [], []
    for item_index, leaf_index in enumerate(leaf.tolist()):
        spec, dept = LEAVES[leaf_index], DEPARTMENTS[leaf_dept[leaf_index]]
        brand = dept.brands[rng.integers(len(dept.brands))]
        adjective = dept.adjectives[rng.integers(len(dept.adjectives))]
        noun = spec.nouns[rng.integers(len(spec.nouns))]
        variant = spec.variants[rng.integers(len(spec.variants))]
        feature = spec.features[rng.integers(len(spec.features))]
        premium = 1.3 if adjective in PREMIUM_ADJECTIVES else 1.0
        base_prices.append(spec.median_price * tiers[brand] * premium)
        nouns.append(noun)
        consumable.append(spec.consumable)
        rows.append({
            "item_id": f"p{item_index + 1:05d}",
            "title": f"{brand} {adjective} {noun}, {variant}",
            "description": f"{adjective} {noun.lower()} by {brand} ({variant}). {feature}. "
                           f"From our {spec.path.split(' > ')[-1].lower()} range in {dept.name}.",
            "category": spec.path,
            "brand": brand,
        })
    price = _round_price(np.array(base_prices) * rng.lognormal(0.0, 0.3, size=n_items))
    leaf_median = np.array([LEAVES[i].median_price for i in leaf])
    quality = rng.normal(0.0, 1.0, size=n_items)
    # Exposure follows a Zipf law over a random ranking nudged by quality: good items get seen more.
    rank = np.argsort(np.argsort(-(rng.normal(0.0, 1.0, size=n_items) + 0.5 * quality)))
    popularity = (rank + 1.0) ** -zipf_exponent
    frame = pl.DataFrame(rows).with_columns(pl.Series("price", price))
    return DemoCatalog(
        frame=frame,
        department=leaf_dept[leaf],
        leaf=leaf,
        noun=nouns,
        price=price,
        relative_price=np.log(price / leaf_median),
        quality=quality,
        popularity=popularity / popularity.sum(),
        consumable=np.array(consumable, dtype=bool),
    )
