"""Frequent English words that compete with the label words in PocketSphinx's grammar.

A participant who says something other than a label most likely says a frequent word
("yes", "okay", "I think", "that one"); the 400 decoy words drawn at random from the
dictionary (:func:`gazelab.annotation.speech.sphinx.decoy_words`) are mostly rare names
and long words, so a short everyday word found no better match than a short label word
("fear", "sad"). :data:`COMMON_WORDS` are the most frequent words of the US-English
language model that ships with pocketsphinx (its unigram probabilities, in that order),
leaving out the label words and their forms and every word of the non-label lists that
measure rejection (:mod:`gazelab.annotation.voice_sets`, the test lists *and* the tuning
lists), so that those measurements stay honest: none of their words is in the grammar.
"""

from __future__ import annotations

COMMON_WORDS: tuple[str, ...] = tuple(
    """
the to and a of in it for but have they be with are this yeah he just my we as if do at or
about all would from people your get out up more when an had hundred really has thousand
will because how time them she been by some who their his were now then mean than going her
see could much other five got even too only want did him something where very way which nine
lot make say first years back any new our also over into year thing still four should work
things those take us most why these twenty need after being little down kind point actually
many day off come same six before last look eight doing pretty around always guess life
dollars long better probably every world does anything school great find though made big
feel through thirty cause game old put use different stuff home may might used thought while
best since man love own getting another fifty few bad give part percent live family tell
ever gonna went someone help keep everything try play hard done enough trying end away its
place far forty talk ninety both real says country kids times least person bit such million
high exactly told nothing friends believe call having able show else watch job ago nice
start once whole government problem looking change children each without days found true
saying between less week seen already makes guy course care name came sixty pay talking
until making seems eighty either seventy read yet definitely team working city mr wanted
left remember fact night business months state number against called half public understand
everyone whatever almost run friend case took sometimes today must god important wrong
started heard couple minutes hi set reason question system together games women war hope
states hey happened thank guys coming sort small fun hear york under quite during agree wow
buy close past food top hours anyone saw side news kinda myself cool thinking company deal
whether comes interesting looks gets later taking young parents phone ask stay matter united
especially power health area american rather move open usually goes line fifteen sense using
men story means however somebody leave become playing lost level living full often head
funny yourself instead group college zero president easy ones others knew post month seem
hit supposed age needs room experience
    """.split()
)
"""The most frequent words of the pocketsphinx US-English language model, most frequent
first, less the label words and the non-label lists' words (398 words)."""
