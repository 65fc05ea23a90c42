"""Writes reviews.csv: 400 short customer reviews with a sentiment label, made from templates with a
fixed seed. Synthetic on purpose: the quickstart needs real training, not real customers' words.
Run: python make_reviews.py
"""
import csv
import random

PRODUCTS = ["phone", "laptop", "headphones", "blender", "kettle", "backpack", "camera", "monitor",
            "keyboard", "vacuum cleaner", "coffee maker", "smartwatch"]
BRANDS = ["Acme", "Zento", "Norrin", "Vexa", "Holloway"]
GOOD = ["works perfectly", "exceeded my expectations", "is excellent value", "feels solid and well made",
        "arrived quickly and well packed", "is easy to set up", "has great battery life", "is quiet and fast",
        "looks beautiful", "does exactly what it promises"]
BAD = ["stopped working after a week", "arrived broken", "is a waste of money", "feels cheap and flimsy",
       "took a month to arrive", "is impossible to set up", "has terrible battery life", "is loud and slow",
       "looks nothing like the photos", "does not do what it promises"]
GOOD_END = ["Highly recommended.", "Would buy again.", "Five stars.", "Love it!", "Very happy with it.",
            "Great customer service too."]
BAD_END = ["Avoid.", "Returning it.", "One star.", "Very disappointed.", "Never again.",
           "Customer service never replied."]
OPENERS = ["I bought this {brand} {product} last month.", "My new {brand} {product}", "This {product}",
           "The {brand} {product} I ordered", "Got the {product} as a gift and it"]


def review(rng: random.Random, positive: bool) -> str:
    brand, product = rng.choice(BRANDS), rng.choice(PRODUCTS)
    opener = rng.choice(OPENERS).format(brand=brand, product=product)
    first = rng.choice(GOOD if positive else BAD)
    second = rng.choice(GOOD if positive else BAD)
    while second == first:
        second = rng.choice(GOOD if positive else BAD)
    end = rng.choice(GOOD_END if positive else BAD_END)
    if opener.endswith("."):
        return f"{opener} It {first} and {second}. {end}"
    return f"{opener} {first} and {second}. {end}"


def main() -> None:
    rng = random.Random(7)
    rows = [(review(rng, i % 2 == 0), "positive" if i % 2 == 0 else "negative") for i in range(400)]
    with open("reviews.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "sentiment"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
