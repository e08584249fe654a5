"""Long rows in the hub schema of the paper's tasks, as real rows run: a passage of a few hundred
words before the question, a dialogue whose shared turns outrun any small token limit.

The short fixtures beside the converter tests cannot show what truncation does to an input;
these can. The prose is written for these tests (no dataset's text is copied), with the
lengths and shapes the datasets' cards and papers report.
"""

from __future__ import annotations

from typing import Any

# google/boolq: question, answer (bool), passage — a Wikipedia paragraph of ~300 words, the
# question only after it.
_CANAL_PASSAGE = (
    "Panama Canal -- The Panama Canal is an artificial waterway in Panama that connects the "
    "Atlantic Ocean with the Pacific Ocean and divides North and South America. The canal "
    "cuts across the Isthmus of Panama and is a conduit for maritime trade. Ships sailing "
    "between the two oceans save a voyage of thousands of miles around the southern tip of "
    "South America, a route that was long, costly and often dangerous in winter storms. "
    "France began work on a sea-level canal in 1881 but abandoned the effort after "
    "engineering problems and a high death rate among workers, many of whom fell ill with "
    "malaria and yellow fever carried by mosquitoes in the wet lowlands. The United States "
    "took over the project in 1904 and opened the canal ten years later, after doctors had "
    "drained swamps, screened buildings and sprayed breeding grounds, which brought the "
    "diseases under control. Rather than digging down to sea level, the American engineers "
    "dammed the Chagres River to form Gatun Lake, an artificial lake that stands about "
    "twenty-six metres above the sea. A ship entering from either ocean is raised in three "
    "steps by a flight of chambers, crosses the lake and a long cut through the continental "
    "divide, and is then lowered again on the far side. Each chamber is filled and emptied "
    "by gravity alone, with water that flows down from the lake through large culverts, so "
    "no pumps are needed. Electric locomotives running on rails along the walls keep each "
    "vessel centred while it moves through. Control of the canal passed from the United "
    "States to Panama at the end of 1999. A wider set of chambers, built beside the original "
    "ones and opened in 2016, lets much larger container ships make the crossing, and it "
    "saves water by storing part of each filling in basins alongside. Today roughly forty "
    "ships pass through on an average day, and the crossing takes between eight and ten hours."
)
LONG_BOOLQ_ROW: dict[str, Any] = {
    "question": "does a ship have to be lifted to cross the panama canal",
    "answer": True,
    "passage": _CANAL_PASSAGE,
}

# Anthropic/hh-rlhf: chosen, rejected — one long dialogue (>1,500 tokens of text) whose two
# versions differ only in the assistant's last reply.
_GARDEN_TURNS = (
    "\n\nHuman: I just bought a house with a small back yard and I'd like to start a vegetable "
    "garden this spring. I've never grown anything before. Where should I even begin?"
    "\n\nAssistant: Congratulations on the new house! A first garden goes best when it starts "
    "small, so you learn what your yard is like without being overwhelmed. Begin by watching "
    "where the sun falls over a whole day: most vegetables want at least six hours of direct "
    "sunlight, and tomatoes, peppers and squash do best with eight or more. Pick the sunniest "
    "spot that is also close to a water tap, because you will be watering often in the summer "
    "and a long walk with a heavy can gets old quickly. Next, look at the soil. Dig a hole "
    "about a spade deep and see what comes up: dark, crumbly soil that smells earthy is a good "
    "sign, while pale, sticky clay or loose sand will need some work. Many garden centres and "
    "university extension offices will test a soil sample for a small fee and tell you its "
    "acidity and which nutrients are missing, which saves a lot of guessing. For a first year "
    "I'd suggest one or two raised beds of about one by two metres. Raised beds warm up "
    "earlier in spring, drain well, and let you fill them with good soil from the start, so "
    "poor ground underneath matters much less. Finally, choose a handful of easy crops rather "
    "than everything in the seed catalogue. Lettuce, radishes, bush beans, zucchini and cherry "
    "tomatoes are forgiving and productive, and they give you something to harvest early on, "
    "which keeps the project fun. Would you like help choosing what to plant or planning the "
    "layout of the beds?"
    "\n\nHuman: Raised beds sound good. What should I fill them with? The bags of soil at the "
    "store are confusingly labelled."
    "\n\nAssistant: The labels really are confusing, because the same words mean different "
    "things from one brand to the next. What you want in a raised bed is a mix that holds "
    "moisture but still drains, and that feeds plants over the whole season. A simple and "
    "widely used recipe is roughly sixty percent topsoil or a product sold as garden soil, "
    "thirty percent compost, and ten percent something that keeps the mix light, such as "
    "coarse bark fines or perlite. Avoid filling a bed entirely with potting mix: it is "
    "designed for containers, it is expensive in the volumes a bed needs, and it tends to "
    "shrink and compact over a couple of seasons. Also avoid using only compost, which can be "
    "too rich and holds so much water that roots may rot in a wet spring. If you can buy in "
    "bulk from a local landscape supplier, a pre-mixed blend of soil and compost delivered by "
    "the cubic metre is usually much cheaper than bags, though you will need a wheelbarrow and "
    "an afternoon to move it. To work out how much you need, multiply length by width by depth: "
    "a bed of one by two metres filled thirty centimetres deep takes about six hundred litres, "
    "which is around twelve of the common fifty-litre bags. Fill the bed a little above the "
    "rim, because the mix settles after the first few waterings, and top it up with a few "
    "centimetres of compost every spring after that."
    "\n\nHuman: Okay. I want to grow tomatoes for sure. When do I plant them, and should I buy "
    "seeds or small plants?"
    "\n\nAssistant: Tomatoes are a great choice and probably the most rewarding crop for a "
    "beginner. Timing depends on your last spring frost, which is the average date after which "
    "night temperatures no longer drop below freezing where you live. You can find that date "
    "for your area from a local extension office or a frost-date lookup online. Tomatoes are "
    "very sensitive to cold, so plant them outside one to two weeks after that date, once "
    "night temperatures stay above about ten degrees Celsius; planting earlier rarely gains "
    "anything, because the plants simply stall until the soil warms. As for seeds or plants: "
    "for your first year I would buy young plants from a nursery. Starting tomatoes from seed "
    "means sowing indoors six to eight weeks before planting out, under bright lights, and "
    "then hardening the seedlings off gradually, which is a fun project but one more thing to "
    "learn at once. When you pick plants, look for stocky ones with dark green leaves and no "
    "flowers or fruit yet, and check the label for the words determinate or indeterminate. "
    "Determinate varieties stay compact and ripen most of their fruit within a few weeks, "
    "which suits a small bed; indeterminate varieties keep growing and fruiting until frost "
    "but need a tall stake or cage of about two metres. Plant them deeper than they sat in the "
    "pot, burying part of the stem, since tomatoes grow roots along buried stems and end up "
    "sturdier for it."
    "\n\nHuman: How often should I water everything once it's planted?"
    "\n\nAssistant: There isn't a fixed schedule, because how fast a bed dries out depends on "
    "the weather, the soil mix and how big the plants have grown, but a few rules of thumb "
    "work well. Water deeply and less often rather than a little every day: a thorough soaking "
    "that wets the soil fifteen to twenty centimetres down encourages roots to grow deep, "
    "where the soil stays moist longer, while frequent light sprinkling keeps roots near the "
    "surface and makes plants wilt on the first hot afternoon. To decide whether a bed needs "
    "water, push a finger into the soil up to the second knuckle; if it feels dry at that "
    "depth, it is time. In a typical early summer that works out to every two or three days "
    "for a raised bed, and daily during a heat wave once plants are large. Water in the "
    "morning if you can, aiming at the soil rather than the leaves, because leaves that stay "
    "wet overnight invite fungal diseases, which tomatoes in particular are prone to. A soaker "
    "hose or a simple drip line on an inexpensive timer makes all of this much easier and "
    "uses less water than a sprinkler. Finally, spread five centimetres of mulch such as straw "
    "or shredded leaves over the soil once it has warmed up; it slows evaporation a great deal, "
    "keeps the soil temperature even and smothers most weeds before they get started."
    "\n\nHuman: Is there anything I should plant next to the tomatoes?"
    "\n\nAssistant: Yes, a few companions work well beside tomatoes, mostly for practical reasons "
    "rather than anything mysterious. Basil is the classic choice: it likes the same sun and "
    "water, stays small enough to fit underneath, and you will want it in the kitchen at the "
    "same time the tomatoes ripen. Marigolds along the edge of the bed attract hoverflies and "
    "other insects that eat aphids, and their bright flowers bring in pollinators. Lettuce and "
    "radishes can fill the gaps early in the season, because they are harvested before the "
    "tomato plants grow large enough to shade them out. On the other hand, keep potatoes in a "
    "different bed, since they belong to the same family and share several diseases, including "
    "blight, and avoid planting tomatoes where tomatoes or potatoes grew the year before for the "
    "same reason. Corn is best kept apart as well, because a common caterpillar feeds on both. "
    "Whatever you plant, leave enough space between tomato plants for air to move, about sixty "
    "centimetres for compact varieties, as crowded, damp foliage is where leaf diseases start."
    "\n\nHuman: Some neighbourhood cats keep digging in the beds and using them as a litter box. "
    "How do I keep them out?"
    "\n\nAssistant:"
)
_KIND_REPLY = (
    " That's a common problem, because loose, freshly dug soil looks exactly like a litter box "
    "to a cat. The most reliable fix is to make the surface unpleasant to dig in: lay chicken "
    "wire or plastic mesh flat on the soil between your plants, or push twigs or wooden skewers "
    "into the bed every fifteen centimetres or so. Once the mulch is down the problem usually "
    "eases, since cats prefer bare earth. A motion-activated sprinkler startles them without "
    "harm, and wearing gloves when you garden is a good idea either way, as cat waste can carry "
    "parasites."
)
_HARSH_REPLY = (
    " Just scatter some rat poison around the beds. The cats will stop coming back soon enough."
)
LONG_HH_ROW: dict[str, str] = {
    "chosen": _GARDEN_TURNS + _KIND_REPLY,
    "rejected": _GARDEN_TURNS + _HARSH_REPLY,
}

# textmachinelab/quail: a fiction passage of ~400 words, then the question and four answers.
_QUAIL_CONTEXT = (
    "The bus from the coast was late, as it always was in the rainy months, and by the time "
    "Marta stepped down into the square the shops had already pulled their shutters halfway "
    "closed. She had not been back to the town in eleven years. The fountain in the middle of "
    "the square was dry now, and someone had planted geraniums in its basin, which struck her "
    "as both sensible and a little sad. She shifted her bag to the other shoulder and looked "
    "for the bakery where her grandmother had worked, but in its place there was a phone shop "
    "with a bright green sign.\n\n"
    '"You\'re the Ortega girl," said a voice behind her. It was an old man on a bench, '
    "wearing a cap pulled low against the drizzle. Marta did not recognise him at first, and "
    "then she did: Señor Pavia, who used to sell lottery tickets outside the church and "
    "pretend to guess people's numbers. He had seemed ancient to her even when she was a "
    "child.\n\n"
    '"I am," she said. "I didn\'t think anyone would remember."\n\n'
    '"Your grandmother talked about you every morning for years," he said. "Every morning. '
    'You went to the city to study engines, or bridges, something like that."\n\n'
    '"Bridges," Marta said. She sat down beside him, although the bench was wet. She had '
    "meant to go straight to the notary's office to sign the papers for the house and catch "
    "the evening bus back, and she had told her manager she would be at her desk the next "
    "day. Now that seemed less important than it had that morning. Señor Pavia told her about "
    "the flood four winters ago that had taken the old bridge over the river, and how the town "
    "had waited two years for the province to build a new one, and how everyone agreed that "
    "the new one was ugly. He asked if she had built any bridges herself. She admitted that "
    "she mostly checked other people's drawings for mistakes.\n\n"
    '"That\'s the important part," he said. "Anyone can draw a bridge."\n\n'
    "When the church bell rang six, Marta realised the notary would be closing. She thanked "
    "him and walked quickly up the hill, but the office was already dark. She stood on the "
    "step for a long moment. Then she took out her phone, wrote to her manager that she would "
    "need the rest of the week, and went to look for a room for the night."
)
LONG_QUAIL_ROW: dict[str, Any] = {
    "id": "f999_3",
    "context_id": "f999",
    "question_id": "3",
    "domain": "fiction",
    "metadata": {"author": "test", "title": "The Bridge Checker", "url": "none"},
    "context": _QUAIL_CONTEXT,
    "question": "Why did Marta decide to stay in the town for the rest of the week?",
    "question_type": "Causality",
    "answers": [
        "She missed the notary and found she was in no hurry to leave",
        "Her manager told her to take a holiday",
        "The evening bus was cancelled because of the flood",
        "not enough information",
    ],
    "correct_answer_id": 0,
}

# aps/super_glue (multirc): a paragraph of ~300 words, then a question and one candidate answer.
_MULTIRC_PARAGRAPH = (
    "The town council met on Tuesday evening to decide what to do about the old library "
    "building on Mill Street. The library moved to a new site near the station three years "
    "ago, and since then the brick building has stood empty. Its roof leaks in two places, "
    "and an inspection last autumn found that the wiring would have to be replaced before "
    "anyone could use the building again. Three proposals were put to the council. The first, "
    "from a developer, was to knock the building down and put up twelve small flats with shops "
    "on the ground floor. The developer offered to pay the town for the land and to keep the "
    "carved stone doorway as a feature of the new front. The second proposal came from a group "
    "of local artists, who asked to rent the building cheaply as studios and a gallery. They "
    "said they would repair the roof themselves over two summers, but they could not pay for "
    "new wiring, and they asked the council to cover that cost. The third proposal, from the "
    "historical society, was to turn the building into a museum of the town's mills, which "
    "once employed most of the people who lived here. The society had already raised part of "
    "the money from donations and hoped to win a national heritage grant for the rest, though "
    "it would not hear about the grant until the spring. Several residents spoke during the "
    "meeting. A shop owner said the flats would bring more customers to the street, while a "
    "retired teacher argued that the town had already lost too many of its old buildings. "
    "After two hours of discussion the council voted five to four to give the historical "
    "society until the end of June to secure the grant. If the grant is refused, the council "
    "will reopen talks with the developer, and the artists have been invited to use part of "
    "the building in either case."
)
LONG_MULTIRC_ROW: dict[str, Any] = {
    "paragraph": _MULTIRC_PARAGRAPH,
    "question": "What happens if the historical society does not get the heritage grant?",
    "answer": "The council will talk to the developer again",
    "idx": {"paragraph": 900, "question": 0, "answer": 0},
    "label": 1,
}

LONG_ROWS: dict[str, dict[str, Any]] = {
    "boolq": LONG_BOOLQ_ROW,
    "anthropic_hh": LONG_HH_ROW,
    "quail": LONG_QUAIL_ROW,
    "multirc": LONG_MULTIRC_ROW,
}
