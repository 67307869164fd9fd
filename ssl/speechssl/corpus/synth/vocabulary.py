"""Languages of the embedded corpus: eSpeak voice and a vocabulary of content words each.

Only content words (mostly nouns of two to five syllables) are used, because eSpeak merges
some function-word pairs into one word ("of the"), which would break the word alignment.
No word is shared between two languages, so a word type names one language and one
pronunciation family.  ``sw`` (Swahili) and ``tn`` (Setswana) stand in for a Bantu language
such as Xitsonga, which eSpeak does not have.
"""

from __future__ import annotations

from speechssl.errors import SpeechSSLError

ESPEAK_VOICES = {
    "en": "en-us", "de": "de", "es": "es", "fr": "fr", "nl": "nl", "sw": "sw", "tn": "tn",
}

VOCABULARY: dict[str, tuple[str, ...]] = {
    "en": tuple("""
        computer elephant beautiful chocolate important yesterday afternoon telephone
        hospital newspaper umbrella education vegetable photograph university kangaroo
        butterfly adventure mountain garden window kitchen dinner summer holiday library
        engineer language picture question history musician potato carpet blanket morning
        evening basket family river forest island village weather monkey rabbit pencil
        teacher bicycle strawberry furniture calendar breakfast wonderful birthday
        """.split()),
    "de": tuple("""
        apfelbaum bahnhof bleistift blumen brötchen bücherei donnerstag eichhörnchen
        eisenbahn erdbeere fahrrad fenster feuerwehr flugzeug frühstück gemüse geschichte
        gestern handschuh himmel hochzeit kartoffel kirche krankenhaus kühlschrank
        landschaft lehrerin mittagessen nachbar regenschirm schmetterling schokolade schule
        schwester sonnenblume spaziergang straße tageszeitung taschenlampe überraschung
        wohnung wissenschaft zeitung zahnarzt zwiebel geburtstag wörterbuch freundschaft
        """.split()),
    "es": tuple("""
        mariposa biblioteca ventana cocina manzana naranja hermano hermana escuela ciudad
        montaña bicicleta cuchillo tenedor cuaderno zapato camisa pelota caballo tortuga
        elefante computadora periódico mañana domingo sábado mercado playa verano invierno
        primavera universidad medicina farmacia panadería carretera ferrocarril aeropuerto
        cumpleaños sombrero guitarra ventilador abuela pescado fresa mantequilla
        """.split()),
    "fr": tuple("""
        papillon bibliothèque fenêtre cuisine grenouille château boulangerie montagne
        bicyclette couteau fourchette cahier chaussure chemise cheval tortue ordinateur
        journal demain dimanche samedi marché plage rivière hiver printemps université
        médecine pharmacie aéroport anniversaire chapeau grenier poisson fraise jardinier
        éléphant parapluie champignon escargot mouchoir écureuil citrouille lunettes
        oreiller framboise tournesol
        """.split()),
    "nl": tuple("""
        vlinder bibliotheek keuken kikker kasteel bakkerij fiets schrift schoen overhemd
        paard schildpad olifant krant zondag zaterdag markt strand rivier zomer lente
        herfst universiteit apotheek vliegveld verjaardag grootmoeder aardbei tuinman
        paraplu paddenstoel eekhoorn pompoen kussen framboos zonnebloem ziekenhuis
        boterham regenboog sinaasappel aardappel spinazie boerderij ontbijt vriendschap
        wetenschap tandarts
        """.split()),
    "sw": tuple("""
        kitabu shule mwalimu rafiki chakula nyumba barabara kompyuta simba tembo twiga
        kiboko ndege samaki maziwa mkate kahawa ndizi nanasi chungwa viazi mchele kijiji
        mlima msitu mvua nyota bahari kisiwa mtoto asubuhi jioni usiku kesho furaha
        mwanafunzi pikipiki marafiki maktaba shangazi mjomba mpishi mkulima kabichi
        kitunguu tangawizi dirisha mlango kitanda karatasi kalamu
        """.split()),
    "tn": tuple("""
        ntlo sekolo morutabana tsala dijo tsela khomputara tlou thutlwa kubu nonyane
        tlhapi mashi borotho motse thaba sekgwa pula letsatsi ngwedi naledi lewatle
        setlhaketlhake ngwana kgaitsadi bookelo ngaka lebenkele pampiri setulo tafole
        bolao maitseboa bosigo gompieno kamoso maabane boitumelo mosadi monna kgomo podi
        katse koloi setimela sefofane lefatshe metsi molelo
        """.split()),
}


def check_languages(languages: list[str]) -> None:
    """Unknown language codes are an error that lists the available ones."""
    unknown = [lang for lang in languages if lang not in VOCABULARY]
    if unknown or not languages:
        raise SpeechSSLError(f"unknown language(s) {', '.join(unknown) or '(none given)'}; "
                             f"available: {', '.join(sorted(VOCABULARY))}")
